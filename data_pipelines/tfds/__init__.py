"""TFDS builds of the seven datasets (and of the embedded benchmark, which is written in their formats).

One folder per dataset, `<module>/<module>_dataset_builder.py` with a `Builder` (the TFDS CLI layout:
`tfds build data_pipelines/tfds/human36m --config=protocol2 --manual_dir=DATA_ROOT --data_dir=TFDS_DIR`), all
sharing `schema.py`; `build.py` builds what a training config reads (`python -m data_pipelines.tfds.build
--config=configs/saa.py`); `source.py` reads the builds for `config.data.source = "tfds"`. The builder modules are
not imported here (the TFDS CLI imports them under its own module names).
"""
