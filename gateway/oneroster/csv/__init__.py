"""The OneRoster 1.2.1 CSV binding: manifest, file layouts, reading and importing bundles."""
