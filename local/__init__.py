"""The local world: everything needed to run and test the stack without AWS or Buildkite.

Nothing in the product (`fargate_stack`) imports this package; it only ever talks to the
product over the same wires the cloud would use (HTTP for Buildkite, the AWS APIs via moto).
"""
