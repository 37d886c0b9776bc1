"""Physics of scan planning: signal/background model parameters, line shape and yields.

Small pure modules (numbers and numpy arrays in, numbers and arrays out):

* :mod:`scanplan.physics.params` reads ``lattices/physics/*.toml`` (the model parameters);
* :mod:`scanplan.physics.lineshape` the area-normalised Voigt line shape in beam energy;
* :mod:`scanplan.physics.yields` signal yield, efficiency and background per POT.
"""
