"""The OneRoster 1.2 binding: vocabulary, CSV, query language and serialization. No flask here."""
