"""`make preflight` (tools/preflight.py): each check passing and failing against moto, with
botocore's Stubber on real clients where moto has no answer (Lambda's account settings,
Service Quotas for Fargate, AccessDenied), and the CLI once end to end."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from samtranslator.yaml_helper import yaml_parse

from tools import preflight
from tools.preflight import Options, Probe, Result, Row

REGION = "us-east-1"
# A fake token: no part of it may ever be printed.
TOKEN = "bkct_0123456789abcdefSECRETPART"


@dataclass
class Account:
    """A moto account, plus stubbed clients for the APIs moto lacks."""

    stubbed: dict[str, Any] = field(default_factory=dict)
    moto: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service in self.stubbed:
            return self.stubbed[service]
        if service not in self.moto:
            self.moto[service] = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
        return self.moto[service]

    def stub(self, service: str) -> Stubber:
        """A real boto3 client whose answers the test scripts."""
        client = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
        stubber = Stubber(client)
        stubber.activate()
        self.stubbed[service] = client
        return stubber

    def probe(self) -> Probe:
        return Probe(self.client)


@pytest.fixture
def account(fake_aws_env: None) -> Iterator[Account]:
    with mock_aws():
        yield Account()


def network(
    account: Account,
    *,
    route: str | None = "nat",
    zones: tuple[str, ...] = ("us-east-1a", "us-east-1b"),
    explicit: bool = True,
) -> tuple[list[str], str]:
    """A VPC with one subnet per zone whose route table sends 0.0.0.0/0 to `route`
    (nat, igw or nowhere), associated explicitly or as the VPC's main table; and a
    security group (all egress, as AWS creates it)."""
    ec2 = account.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)["Subnet"][
            "SubnetId"
        ]
        for i, zone in enumerate(zones)
    ]
    if explicit:
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        for subnet in subnets:
            ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    else:
        (main,) = ec2.describe_route_tables(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc]},
                {"Name": "association.main", "Values": ["true"]},
            ]
        )["RouteTables"]
        table = main["RouteTableId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    if route == "igw":
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    elif route == "nat":
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=eip)["NatGateway"]
        ec2.create_route(
            RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat["NatGatewayId"]
        )
    group = ec2.create_security_group(GroupName=f"bk-{vpc}", Description="tasks", VpcId=vpc)
    return subnets, group["GroupId"]


def secret(account: Account, value: str | bytes, name: str = "buildkite/token") -> str:
    sm = account.client("secretsmanager")
    if isinstance(value, bytes):
        return str(sm.create_secret(Name=name, SecretBinary=value)["ARN"])
    return str(sm.create_secret(Name=name, SecretString=value)["ARN"])


def options(subnets: list[str], group: str, token_arn: str, **overrides: Any) -> Options:
    facts = preflight.read_template()
    values: dict[str, Any] = {
        "region": REGION,
        "subnets": subnets,
        "security_groups": [group],
        "cluster_token_secret_arn": token_arn,
        "agent_token_secret_arn": None,
        "assign_public_ip": "DISABLED",
        "max_in_flight": facts.max_in_flight,
        "default_cpu": facts.default_cpu,
        "capacity_strategy": facts.capacity_strategy,
        "launcher_max_concurrency": facts.launcher_max_concurrency,
        "secrets_kms_key_arn": None,
    }
    return Options(**(values | overrides))


def results(rows: list[Row]) -> list[Result]:
    return [row.result for row in rows]


def only(rows: list[Row]) -> Row:
    assert len(rows) == 1, rows
    return rows[0]


# ------------------------------------------------------------------ 1. ECS service-linked role


def test_the_ecs_service_linked_role_passes_when_it_exists(account: Account) -> None:
    # Given an account with the role (created by name: moto's create_service_linked_role
    # names it AWSServiceRoleForecs, a moto gap)
    account.client("iam").create_role(
        RoleName="AWSServiceRoleForECS",
        Path="/aws-service-role/ecs.amazonaws.com/",
        AssumeRolePolicyDocument="{}",
    )
    # When the check runs, then it passes
    assert only(account.probe().ecs_role()).result is Result.OK


def test_a_missing_ecs_service_linked_role_fails_with_the_command_that_creates_it(
    account: Account,
) -> None:
    # Given an account that never used ECS, when the check runs
    row = only(account.probe().ecs_role())
    # Then it fails and the fix is the documented command (docs/reference/aws.md §H.3)
    assert row.result is Result.FAIL
    assert row.fix == "aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com"


def test_an_aws_error_becomes_a_failing_row_naming_the_api_and_the_code(account: Account) -> None:
    # Given credentials that may not call iam:GetRole
    account.stub("iam").add_client_error("get_role", service_error_code="AccessDenied")
    # When the check runs, then it is a FAIL row, not a traceback
    row = only(account.probe().ecs_role())
    assert row.result is Result.FAIL
    assert "iam:GetRole" in row.check
    assert "AccessDenied" in row.check


# --------------------------------------------------------------------- 2. Lambda concurrency


def lambda_settings(account: Account, quota: int, unreserved: int) -> None:
    # moto does not implement GetAccountSettings ("Not yet implemented").
    account.stub("lambda").add_response(
        "get_account_settings",
        {
            "AccountLimit": {
                "ConcurrentExecutions": quota,
                "UnreservedConcurrentExecutions": unreserved,
            }
        },
    )


def test_lambda_concurrency_passes_on_a_standard_quota(account: Account) -> None:
    # Given the standard quota of 1,000, when the check runs with the template's default
    lambda_settings(account, 1000, 1000)
    row = only(account.probe().lambda_concurrency(5))
    # Then it passes, and names what the stack needs: launcher 5 + poller + failure handler
    assert row.result is Result.OK
    assert "stack needs 7" in row.check


def test_a_new_accounts_low_lambda_quota_is_a_warning_with_the_fix(account: Account) -> None:
    # Given a new account's quota of 10 (docs/reference/aws.md §H.2)
    lambda_settings(account, 10, 10)
    # When the check runs, then it warns (never fails) and says to request an increase
    row = only(account.probe().lambda_concurrency(5))
    assert row.result is Result.WARN
    assert "request a Lambda concurrency quota increase" in row.fix


def test_lambda_concurrency_warns_when_unreserved_is_below_the_stacks_need(
    account: Account,
) -> None:
    # Given an account whose other functions reserved nearly everything
    lambda_settings(account, 1000, 20)
    # When the launcher may run 50 at once, then it warns and names the parameter to lower
    row = only(account.probe().lambda_concurrency(50))
    assert row.result is Result.WARN
    assert "LauncherMaxConcurrency" in row.fix


# ------------------------------------------------------------------------ 3. Fargate quotas


def fargate_quota(stubber: Stubber, code: str, value: float) -> None:
    stubber.add_response(
        "get_service_quota",
        {"Quota": {"ServiceCode": "fargate", "QuotaCode": code, "Value": value}},
        {"ServiceCode": "fargate", "QuotaCode": code},
    )


@pytest.mark.parametrize(
    ("strategy", "codes"),
    [
        ("spot", ["L-36FBB829"]),
        ("on-demand", ["L-3032A538"]),
        ("spot-with-fallback", ["L-36FBB829", "L-3032A538"]),
    ],
)
def test_each_capacity_strategy_checks_the_vcpu_quotas_it_draws_on(
    account: Account, strategy: str, codes: list[str]
) -> None:
    # Given quotas of 4,000 vCPU each (what established accounts have)
    stubber = account.stub("service-quotas")
    for code in codes:
        fargate_quota(stubber, code, 4000)
    # When 100 tasks of 1 vCPU may run at once
    rows = account.probe().fargate_quotas(strategy, 100, 1024)
    # Then exactly those quotas were read (Stubber checks the parameters) and pass
    stubber.assert_no_pending_responses()
    assert results(rows) == [Result.OK] * len(codes)
    assert [code in row.check for row, code in zip(rows, codes, strict=True)] == [True] * len(codes)


def test_a_vcpu_quota_below_max_in_flight_warns_with_what_fits(account: Account) -> None:
    # Given a Spot quota of 6 vCPU, when 100 tasks of 2 vCPU may run
    fargate_quota(account.stub("service-quotas"), "L-36FBB829", 6)
    row = only(account.probe().fargate_quotas("spot", 100, 2048))
    # Then it warns: 200 vCPU are needed, 3 tasks fit
    assert row.result is Result.WARN
    assert "need 200" in row.check
    assert "lower MaxInFlight to 3" in row.fix


def test_a_vcpu_quota_too_small_for_one_task_fails(account: Account) -> None:
    # Given an On-Demand quota of 0 vCPU, when the check runs, then nothing could launch
    fargate_quota(account.stub("service-quotas"), "L-3032A538", 0)
    row = only(account.probe().fargate_quotas("on-demand", 100, 1024))
    assert row.result is Result.FAIL
    assert "L-3032A538" in row.fix


def test_a_quota_without_an_applied_value_is_read_from_its_default(account: Account) -> None:
    # Given a quota GetServiceQuota has no applied value for
    stubber = account.stub("service-quotas")
    stubber.add_client_error("get_service_quota", service_error_code="NoSuchResourceException")
    stubber.add_response(
        "get_aws_default_service_quota",
        {"Quota": {"QuotaCode": "L-36FBB829", "Value": 4000}},
        {"ServiceCode": "fargate", "QuotaCode": "L-36FBB829"},
    )
    # When the check runs, then the default value is compared
    assert only(account.probe().fargate_quotas("spot", 100, 1024)).result is Result.OK


# ------------------------------------------------------------------------------ 4. subnets


def subnet_results(account: Account, opts: Options) -> list[Row]:
    return [row for row in account.probe().network(opts) if "security group" not in row.check]


def test_subnets_routed_through_a_nat_gateway_pass(account: Account) -> None:
    # Given two subnets in two AZs routed through a NAT gateway, when the check runs
    subnets, group = network(account, route="nat")
    rows = subnet_results(account, options(subnets, group, "arn"))
    # Then each passes
    assert results(rows) == [Result.OK, Result.OK]
    assert "NAT gateway nat-" in rows[0].check


def test_the_vpcs_main_route_table_applies_without_an_explicit_association(
    account: Account,
) -> None:
    # Given subnets with no association of their own and a main table routed through NAT
    subnets, group = network(account, route="nat", explicit=False)
    # When the check runs, then the main table's route counts
    assert results(subnet_results(account, options(subnets, group, "arn"))) == [Result.OK] * 2


def test_an_internet_gateway_route_fails_without_a_public_ip(account: Account) -> None:
    # Given public subnets (internet gateway), when the tasks would get no public IP
    subnets, group = network(account, route="igw")
    rows = subnet_results(account, options(subnets, group, "arn"))
    # Then it fails, with the parameter to set
    assert results(rows) == [Result.FAIL, Result.FAIL]
    assert "--assign-public-ip ENABLED" in rows[0].fix


def test_an_internet_gateway_route_passes_with_a_public_ip(account: Account) -> None:
    # Given public subnets, when the tasks get a public IP, then they pass
    subnets, group = network(account, route="igw")
    rows = subnet_results(account, options(subnets, group, "arn", assign_public_ip="ENABLED"))
    assert results(rows) == [Result.OK, Result.OK]


def test_a_subnet_without_a_default_route_fails(account: Account) -> None:
    # Given subnets whose route table reaches only the VPC, when the check runs, then it fails
    subnets, group = network(account, route=None)
    rows = subnet_results(account, options(subnets, group, "arn"))
    assert results(rows) == [Result.FAIL, Result.FAIL]
    assert "no 0.0.0.0/0 route" in rows[0].check


def test_a_missing_subnet_fails_and_the_others_are_still_checked(account: Account) -> None:
    # Given one real subnet and one that does not exist
    subnets, group = network(account, zones=("us-east-1a",))
    rows = subnet_results(account, options([*subnets, "subnet-0123456789abcdef0"], group, "arn"))
    # Then the real one passes, the missing one fails, and one AZ is a warning
    assert results(rows) == [Result.OK, Result.FAIL, Result.WARN]
    assert "subnet-0123456789abcdef0 does not exist" in rows[1].check


def test_subnets_in_a_single_availability_zone_are_a_warning(account: Account) -> None:
    # Given two subnets in the same AZ, when the check runs, then it warns
    subnets, group = network(account, zones=("us-east-1a", "us-east-1a"))
    rows = subnet_results(account, options(subnets, group, "arn"))
    assert results(rows) == [Result.OK, Result.OK, Result.WARN]
    assert "one availability zone" in rows[2].check


# ---------------------------------------------------------------------- 5. security groups


def group_results(account: Account, opts: Options) -> list[Row]:
    return [row for row in account.probe().network(opts) if "security group" in row.check]


def test_a_security_group_with_the_default_egress_passes(account: Account) -> None:
    # Given a group with AWS's default rule (all traffic to 0.0.0.0/0), then it passes
    subnets, group = network(account)
    assert results(group_results(account, options(subnets, group, "arn"))) == [Result.OK]


def test_a_security_group_without_https_egress_fails(account: Account) -> None:
    # Given a group whose egress was narrowed to DNS only
    subnets, group = network(account)
    ec2 = account.client("ec2")
    ec2.revoke_security_group_egress(
        GroupId=group,
        IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    ec2.authorize_security_group_egress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "udp",
                "FromPort": 53,
                "ToPort": 53,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    # When the check runs, then it fails with the rule to add
    row = only(group_results(account, options(subnets, group, "arn")))
    assert row.result is Result.FAIL
    assert "TCP 443" in row.fix


@pytest.mark.parametrize(
    "rule",
    [
        {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
        },
        {
            "IpProtocol": "tcp",
            "FromPort": 0,
            "ToPort": 65535,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
        },
        {"IpProtocol": "6", "FromPort": 443, "ToPort": 443, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    ],
)
def test_any_rule_covering_https_to_anywhere_counts(rule: dict[str, Any]) -> None:
    # Given a group with one such rule, then HTTPS egress is allowed
    assert preflight.allows_https_egress({"IpPermissionsEgress": [rule]})


@pytest.mark.parametrize(
    "rule",
    [
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
        },
        {
            "IpProtocol": "udp",
            "FromPort": 443,
            "ToPort": 443,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
        },
    ],
)
def test_rules_that_miss_port_443_or_the_internet_do_not_count(rule: dict[str, Any]) -> None:
    # Given a group with only such a rule, then HTTPS egress is not allowed
    assert not preflight.allows_https_egress({"IpPermissionsEgress": [rule]})


def test_a_missing_security_group_fails(account: Account) -> None:
    # Given a group id that does not exist, when the check runs, then it fails
    subnets, _ = network(account)
    row = only(group_results(account, options(subnets, "sg-0123456789abcdef0", "arn")))
    assert row.result is Result.FAIL
    assert "does not exist" in row.check


def test_a_security_group_of_another_vpc_fails(account: Account) -> None:
    # Given subnets of one VPC and a group of another, then RunTask would refuse them
    subnets, _ = network(account)
    _, other_group = network(account)
    row = only(group_results(account, options(subnets, other_group, "arn")))
    assert row.result is Result.FAIL
    assert "the subnets' VPC" in row.fix


# ------------------------------------------------------------------------------- 6. secrets


def test_a_cluster_token_stored_as_a_plain_string_passes(account: Account) -> None:
    # Given the token as a plain string, named by its full ARN, then both checks pass
    rows = account.probe().secret("cluster token secret", secret(account, TOKEN))
    assert results(rows) == [Result.OK, Result.OK]


def test_a_partial_secret_arn_fails_with_where_to_find_the_full_one(account: Account) -> None:
    # Given the ARN without its six-character suffix (docs/reference/aws.md §H.5)
    arn = secret(account, TOKEN)
    partial = arn.rsplit("-", 1)[0]
    # When the check runs, then the ARN fails and the value is still checked
    rows = account.probe().secret("cluster token secret", partial)
    assert results(rows) == [Result.FAIL, Result.OK]
    assert rows[0].fix == "pass the full ARN from `aws secretsmanager describe-secret`"
    assert arn in rows[0].check  # the ARN to use (an ARN, not the value)


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        ('{"token": "' + TOKEN + '"}', "a JSON object"),
        ("xoxb-not-a-cluster-token", "not a cluster token"),
        (TOKEN + "\n", "surrounding whitespace"),
        (TOKEN.encode(), "binary"),
    ],
)
def test_a_secret_that_is_not_a_plain_cluster_token_fails(
    account: Account, value: str | bytes, shape: str
) -> None:
    # Given a secret whose value has the wrong shape, when the check runs
    rows = account.probe().secret("cluster token secret", secret(account, value))
    # Then the value check fails and says what it looks like
    assert results(rows) == [Result.OK, Result.FAIL]
    assert shape in rows[1].check


def test_a_missing_secret_fails_with_the_error_code(account: Account) -> None:
    # Given an ARN of a secret that does not exist, when the check runs, then it fails
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:buildkite/none-AbCdEf"
    rows = account.probe().secret("cluster token secret", arn)
    assert results(rows) == [Result.OK, Result.FAIL]
    assert "ResourceNotFoundException" in rows[1].check


def test_a_secret_the_caller_cannot_read_fails_naming_get_secret_value(account: Account) -> None:
    # Given a secret that exists but that these credentials may not read
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:buildkite/token-AbCdEf"
    stubber = account.stub("secretsmanager")
    stubber.add_response("describe_secret", {"ARN": arn, "Name": "buildkite/token"})
    stubber.add_client_error("get_secret_value", service_error_code="AccessDeniedException")
    # When the check runs, then the read fails with the API and the code
    rows = account.probe().secret("cluster token secret", arn)
    assert results(rows) == [Result.OK, Result.FAIL]
    assert "secretsmanager:GetSecretValue" in rows[1].check
    assert "AccessDeniedException" in rows[1].check


# ------------------------------------------------------------------------------ 7. KMS key


def test_an_enabled_symmetric_key_passes(account: Account) -> None:
    key = account.client("kms").create_key(KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT")[
        "KeyMetadata"
    ]["Arn"]
    # Given an enabled symmetric encryption key, then it passes
    assert only(account.probe().kms_key(key)).result is Result.OK


def test_a_disabled_or_asymmetric_key_fails(account: Account) -> None:
    # Given a disabled key and an RSA signing key
    kms = account.client("kms")
    created = kms.create_key(KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT")
    disabled = created["KeyMetadata"]["Arn"]
    kms.disable_key(KeyId=created["KeyMetadata"]["KeyId"])  # moto takes the id, not the ARN
    signing = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    # When each is checked, then each fails and says why
    (off,) = account.probe().kms_key(disabled)
    (rsa,) = account.probe().kms_key(signing)
    assert (off.result, rsa.result) == (Result.FAIL, Result.FAIL)
    assert "state Disabled" in off.check
    assert "spec RSA_2048" in rsa.check
    assert "usage SIGN_VERIFY" in rsa.check


# -------------------------------------------------------------------------------- the CLI


def test_the_defaults_are_the_templates() -> None:
    # Given template.yaml's parameters, when only the required options are passed
    params = yaml_parse((Path(preflight.ROOT) / "template.yaml").read_text())["Parameters"]
    opts = preflight.parse(
        ["--subnets", "subnet-a", "--security-groups", "sg-1", "--cluster-token-secret-arn", "a"],
        preflight.read_template(),
    )
    # Then every default is the template's
    assert opts.max_in_flight == int(params["MaxInFlight"]["Default"])
    assert opts.default_cpu == int(params["DefaultCpu"]["Default"])
    assert opts.capacity_strategy == params["CapacityStrategy"]["Default"]
    assert opts.assign_public_ip == params["AssignPublicIp"]["Default"]
    assert opts.launcher_max_concurrency == int(params["LauncherMaxConcurrency"]["Default"])


def test_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    # Given --help, when the CLI runs, then it exits 0 and names each option
    with pytest.raises(SystemExit) as exit_info:
        preflight.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--region",
        "--subnets",
        "--security-groups",
        "--cluster-token-secret-arn",
        "--agent-token-secret-arn",
        "--assign-public-ip",
        "--max-in-flight",
        "--default-cpu",
        "--capacity-strategy",
        "--launcher-max-concurrency",
        "--secrets-kms-key-arn",
    ):
        assert option in out


def test_the_cli_prints_the_table_and_exits_1_without_ever_printing_a_secret(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an account with the ECS role missing, public subnets without a public IP, a
    # cluster token secret stored as JSON and an agent token secret without the bkct_ prefix
    subnets, group = network(account, route="igw")
    lambda_settings(account, 1000, 1000)
    quotas = account.stub("service-quotas")
    fargate_quota(quotas, "L-36FBB829", 4000)
    fargate_quota(quotas, "L-3032A538", 4000)
    cluster = secret(account, '{"token": "' + TOKEN + '"}', name="bk/cluster")
    agent_value = "SECRET-agent-value-0123456789"
    agent = secret(account, agent_value, name="bk/agent")
    argv = [
        "--region", REGION,
        "--subnets", ",".join(subnets),
        "--security-groups", group,
        "--cluster-token-secret-arn", cluster,
        "--agent-token-secret-arn", agent,
    ]  # fmt: skip
    # When the CLI runs
    code = preflight.main(argv, account.client)
    out, err = capsys.readouterr()
    # Then it prints the table with the failures and their fixes, and exits 1
    assert code == 1
    assert out.splitlines()[2].split() == ["check", "result", "how", "to", "fix"]
    assert re.search(
        r"AWSServiceRoleForECS is missing +FAIL +aws iam create-service-linked-role", out
    )
    assert "--assign-public-ip ENABLED" in out
    assert "cluster token secret: value is a JSON object" in out
    assert "agent token secret: value is not a cluster token" in out
    assert "failed" in out.splitlines()[-1]
    # And no part of either secret's value appears anywhere
    for value in (TOKEN, TOKEN[5:], "SECRETPART", agent_value, "agent-value"):
        assert value not in out
        assert value not in err


def test_the_cli_exits_0_when_nothing_fails(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an account ready for the stack (warnings allowed: one AZ)
    account.client("iam").create_role(
        RoleName="AWSServiceRoleForECS",
        Path="/aws-service-role/ecs.amazonaws.com/",
        AssumeRolePolicyDocument="{}",
    )
    subnets, group = network(account, route="nat", zones=("us-east-1a",))
    lambda_settings(account, 1000, 1000)
    fargate_quota(account.stub("service-quotas"), "L-3032A538", 4000)
    token = secret(account, TOKEN)
    key = account.client("kms").create_key(KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT")[
        "KeyMetadata"
    ]["Arn"]
    argv = [
        "--subnets", subnets[0],
        "--security-groups", group,
        "--cluster-token-secret-arn", token,
        "--capacity-strategy", "on-demand",
        "--secrets-kms-key-arn", key,
    ]  # fmt: skip
    # When the CLI runs (region from the environment), then it exits 0
    assert preflight.main(argv, account.client) == 0
    out = capsys.readouterr().out
    assert "region us-east-1" in out
    assert "0 failed, 1 warnings" in out
    assert TOKEN not in out
