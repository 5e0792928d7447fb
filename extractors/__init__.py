"""Pure feature extractors: functions over numpy arrays with config dataclasses. No Beam here."""
