"""The feature store's contract: Arrow schemas, tensor encodings, records and the manifest."""

SCHEMA_VERSION = "1.0"
