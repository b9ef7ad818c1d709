"""Thin boto3 adapters. Each takes an optional client (tests pass one bound to moto) and
translates botocore errors into the stack's TransientError / PermanentError."""
