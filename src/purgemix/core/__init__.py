"""The engine: records and their shapes, stages, run directories, the ledger and the driver. It knows no family."""
