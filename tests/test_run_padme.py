"""Guided run with the PadmeDAQ push on a real MariaDB: every started run gets its run
conditions and SOR tag exactly once, also when the run row appears late (RunControl's DB
write delayed) and the push is retried on the next ``run``. The machine and RunControl are
the deterministic fakes (``tests/fixtures/fake_btf.py``); the database is real."""

from __future__ import annotations

import uuid

from fixtures import facility as fx
from fixtures import fake_btf as fb
from fixtures.padmedaq import create_padmedaq_database, drop_database, insert_run, query

from hw_interfaces.fakes import FakeRunControlSession
from hw_interfaces.padme_db import PadmeDB
from hw_interfaces.runcontrol import NewRunResult
from scanplan.exports.sor_tag import format_sor_tag
from scanplan.run import KIND_PADME_PUSH, GuidedRun, QuietUI, RunOptions
from scanplan.store.padmedaq import PadmeDAQStore

fake_btf = fb.fake_btf  # fixture
plan = fx.plan  # fixture
predictor = fx.predictor  # fixture
store = fx.store  # fixture
tolerances = fx.tolerances  # fixture


def test_padme_push_once_per_run_with_late_run_row(fake_btf, plan, store, mariadb_server):
    db = f"padme_{uuid.uuid4().hex[:8]}"
    create_padmedaq_database(mariadb_server, db)
    late: list[int] = []

    class RunControlWritingDB(FakeRunControlSession):
        """RunControl writes the run row (facts 6); for the second run it is late."""

        def new_run(self, run_type: str, shift_crew: str, comment: str) -> NewRunResult:
            res = super().new_run(run_type, shift_crew, comment)
            if len(late) == 0 and res.run_number == first_run + 1:
                late.append(res.run_number)
            else:
                insert_run(mariadb_server, db, res.run_number)
            return res

    first_run = fake_btf.runcontrol.last_run_number + 1
    try:
        padme = PadmeDAQStore(
            PadmeDB(
                mariadb_server.host,
                mariadb_server.port,
                mariadb_server.user,
                mariadb_server.password,
                db,
            )
        )
        ui = QuietUI(fake_btf.clock)
        guided = GuidedRun(
            plan,
            checker=fake_btf.checker(),
            store=store,
            runcontrol=lambda: RunControlWritingDB(fake_btf.runcontrol),
            options=RunOptions(dwell_s=0.1, settle_timeout_s=5.0),
            ui=ui,
            padme=padme,
            clock=fake_btf.clock,
        )
        # the crew sets each point: move the simulator when the tool asks
        orig_confirm = ui.confirm

        def confirm(prompt: str) -> bool:
            for p in plan.points:
                if prompt.startswith(f"Point {p.period}: set DHSTB001"):
                    fake_btf.psu.set_currents(fb.currents_of(plan, p.period))
            return orig_confirm(prompt)

        ui.confirm = confirm  # type: ignore[method-assign]
        rows = guided.run()
        assert all(r.done for r in rows)
        runs = [n for r in rows for n in r.runs]
        assert len(runs) == 3 and late == [runs[1]]
        pushed = {e.run_number for e in store.history(kinds=[KIND_PADME_PUSH])}
        assert pushed == {runs[0], runs[2]}
        assert any(f"PadmeDAQ push for run {runs[1]} failed" in m for m in ui.messages)
        # RunControl's row arrives; the next run (a resume) pushes what is missing, once
        insert_run(mariadb_server, db, runs[1])
        guided.run()
        assert guided.push_pending() == []
        pushes = store.history(kinds=[KIND_PADME_PUSH])
        assert sorted(e.run_number for e in pushes) == sorted(runs)
        sor = query(
            mariadb_server,
            db,
            "SELECT run_number, text FROM log_entry WHERE type = 'SOR' ORDER BY run_number",
        )
        assert [r[0] for r in sor] == sorted(runs)
        by_run = {e.run_number: e.period for e in store.history(kinds=["run_started"])}
        for number, text in sor:
            assert text == format_sor_tag(plan.content_sha256, plan.point(by_run[number]))
        dup = query(
            mariadb_server,
            db,
            "SELECT run_number, config_para_name_id, count(*) FROM run_config_para "
            "GROUP BY run_number, config_para_name_id HAVING count(*) > 1",
        )
        assert dup == []
        tags = query(
            mariadb_server,
            db,
            "SELECT p.run_number, p.value FROM run_config_para p JOIN config_para_name n "
            "ON n.id = p.config_para_name_id WHERE n.name = 'scanplan.tag' ORDER BY p.run_number",
        )
        assert [(n, v) for n, v in tags] == [(n, t) for n, t in sor]
    finally:
        drop_database(mariadb_server, db)
