"""The OneRoster 1.2 Gradebook service, free of flask: its operations as data
(:mod:`~gateway.gradebook.endpoints`), its records and their bodies
(:mod:`~gateway.gradebook.records`) and what each operation does
(:mod:`~gateway.gradebook.service`)."""
