"""Analysis of an observed scan with the likelihood of PADME's published treatment, and the
same likelihood for planning (issue 13). Submodules: :mod:`.observed` (the table),
:mod:`.likelihood` (model and fits), :mod:`.limits` (significance, CLs limits, toys)."""
