"""The bottom of the project: small helpers every app may use. It imports no app."""
