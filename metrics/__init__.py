"""Quality and equivariance metrics of generators (FID, KID, EQ-T, EQ-R), usable from `calc_metrics.py` and training.

Entry points live in `metrics.metric_main`: `list_valid_metrics()`, `is_valid_metric(name)`,
`calc_metric(metric, G, ...)` and `report_metric(result_dict, run_dir=None, snapshot_pkl=None)`.
Importing this package is cheap (nothing is loaded or probed until a metric runs).
"""
