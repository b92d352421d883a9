"""What the tests (and benchmarks) share besides fixtures: import it as ``support``.

tests/ is on ``sys.path`` (``pythonpath`` of ``[tool.pytest.ini_options]`` in pyproject.toml;
the benchmarks add it in benchmarks/paths.py), so ``from support.oracle import naive_mosaic``
works from any test and any working directory. Fixtures stay in the conftest.py files (pytest
finds them there); a conftest module is never imported by a test.

- :mod:`support.net`: free ports, bound sockets, starting a server and waiting for it.
- :mod:`support.stac_files`: small COG collections, STAC items, the shared real data.
- :mod:`support.engine`: :class:`~support.engine.Mosaicker`, the engine over a catalogue.
- :mod:`support.oracle`: the naive quality-mosaic oracle (tests and benchmarks).
- :mod:`support.hostile`: the hostile-input suite's coordinates, refusals, child process.
- :mod:`support.remote_servers`: a range-capable HTTP file server with faults, moto's S3.
- :mod:`support.pc_emulator`: the Planetary Computer token API and blob server.
- :mod:`support.stacapi_server`: stac-fastapi-pgstac on a PgSTAC database.
- :mod:`support.pgstac_cluster`: a throwaway PostgreSQL + PostGIS + PgSTAC server.
"""
