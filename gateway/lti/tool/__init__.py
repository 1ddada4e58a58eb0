"""The gateway as an LTI 1.3 tool: LMS platforms launch it (through pylti1p3), and it brokers each
launch on to a district app as the platform it also is."""
