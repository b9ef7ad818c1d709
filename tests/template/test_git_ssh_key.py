"""Given GitSshKeySecretArn or GitCredentialsSecretArn, when the template deploys, then the
agent container gets the key as SSH_PRIVATE_RSA_KEY (the image's ssh-env-config.sh writes it
to ~/.ssh/id_rsa: docs/reference/aws.md §A.9) and the credentials as
BUILDKITE_FARGATE_GIT_CREDENTIALS (the stack's entrypoint stores them for git:
docs/reference/aws.md §A.11) from the task definition's secrets, beside the agent token in
agent-token mode, and nothing without them. Never an override: no launch, log or event
carries them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.template import deployed_resources, parameter_values

KEY = "arn:aws:secretsmanager:us-east-1:123456789012:secret:git-deploy-key-AbCdEf"
CREDS = "arn:aws:secretsmanager:us-east-1:123456789012:secret:git-credentials-AbCdEf"
TOKEN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:agent-token-AbCdEf"


@pytest.mark.parametrize(
    ("mode", "key", "creds", "names"),
    [
        ("job-acquisition-token", "", "", []),
        ("job-acquisition-token", KEY, "", ["SSH_PRIVATE_RSA_KEY"]),
        ("job-acquisition-token", "", CREDS, ["BUILDKITE_FARGATE_GIT_CREDENTIALS"]),
        ("agent-token", "", "", ["BUILDKITE_AGENT_TOKEN"]),
        (
            "agent-token",
            KEY,
            CREDS,
            ["BUILDKITE_AGENT_TOKEN", "SSH_PRIVATE_RSA_KEY", "BUILDKITE_FARGATE_GIT_CREDENTIALS"],
        ),
    ],
)
def test_the_agent_container_gets_the_key_from_the_task_definitions_secrets(
    cfn_template: dict[str, Any], mode: str, key: str, creds: str, names: list[str]
) -> None:
    params = parameter_values(
        cfn_template,
        AgentTokenMode=mode,
        GitSshKeySecretArn=key,
        GitCredentialsSecretArn=creds,
        AgentTokenSecretArn=TOKEN,
    )
    task = deployed_resources(cfn_template, params)["AgentTaskDefinition"]["Properties"]
    (agent,) = task["ContainerDefinitions"]
    secrets = agent.get("Secrets", [])
    assert [s["Name"] for s in secrets] == names
    if key:
        (ssh,) = [s for s in secrets if s["Name"] == "SSH_PRIVATE_RSA_KEY"]
        assert ssh["ValueFrom"] == {"Ref": "GitSshKeySecretArn"}
    if creds:
        (https,) = [s for s in secrets if s["Name"] == "BUILDKITE_FARGATE_GIT_CREDENTIALS"]
        assert https["ValueFrom"] == {"Ref": "GitCredentialsSecretArn"}
    # neither is ever a plain environment value
    assert all("SSH" not in e["Name"] and "GIT" not in e["Name"] for e in agent["Environment"])
