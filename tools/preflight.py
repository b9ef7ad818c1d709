"""Check an AWS account before the first `sam deploy` (`make preflight ARGS="--help"`).

Runs with the operator's own credentials and only reads: IAM, Lambda, Service Quotas, EC2,
Secrets Manager and KMS. Prints one row per check (ok, FAIL, warn) with how to fix it, and
exits 1 when any check fails. The checks and their reasons are in docs/deploy.md, "Before the
first deploy"; the facts behind them in docs/reference/aws.md §H.

Layout: the rules are pure functions of API answers (`*_rows`), the AWS calls are in `Probe`,
so tests drive the rules with moto and botocore's Stubber. A secret's value is classified by
`token_shape` and never leaves it: no row, message or exception carries any part of it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"

ECS_SERVICE_LINKED_ROLE = "AWSServiceRoleForECS"
# Service Quotas codes of Fargate's concurrent vCPU quotas (docs/reference/aws.md §H.15).
FARGATE_SERVICE_CODE = "fargate"
ON_DEMAND_VCPU_QUOTA = "L-3032A538"  # Fargate On-Demand vCPU resource count
SPOT_VCPU_QUOTA = "L-36FBB829"  # Fargate Spot vCPU resource count
# The poller runs one invocation at a time; the failure handler needs at least one more.
# Both are floors: stop events come in bursts (docs/reference/aws.md §H.16).
POLLER_CONCURRENCY = 1
FAILURE_HANDLER_CONCURRENCY = 1
# Below this account quota the account is one of the reduced new-account quotas
# (docs/reference/aws.md §H.2, §H.16): a burst of stop events can throttle.
LOW_LAMBDA_QUOTA = 100
# A full secret ARN ends in the name, a hyphen and six random characters
# (docs/reference/aws.md §H.5).
FULL_SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$"
)
CLUSTER_TOKEN_PREFIX = "bkct_"  # noqa: S105 - a prefix to look for, not a secret


class Result(Enum):
    OK = "ok"
    FAIL = "FAIL"
    WARN = "warn"


@dataclass(frozen=True)
class Row:
    """One line of the report: what was checked, the verdict, and how to fix it."""

    check: str
    result: Result
    fix: str = ""


def ok(check: str) -> Row:
    return Row(check, Result.OK)


def fail(check: str, fix: str) -> Row:
    return Row(check, Result.FAIL, fix)


def warn(check: str, fix: str) -> Row:
    return Row(check, Result.WARN, fix)


@dataclass(frozen=True)
class AwsError:
    """An AWS call that did not answer: its API name and error code, never its payload."""

    api: str
    code: str

    def row(self, check: str) -> Row:
        return fail(
            f"{check}: {self.api} failed ({self.code})",
            f"allow {self.api} for these credentials (or check the region), then rerun",
        )


# ----------------------------------------------------------------------- template defaults


@dataclass(frozen=True)
class TemplateFacts:
    """What the checks need from template.yaml, read so the defaults cannot drift."""

    max_in_flight: int
    default_cpu: int
    cpu_choices: tuple[int, ...]
    capacity_strategy: str
    capacity_choices: tuple[str, ...]
    assign_public_ip: str
    launcher_max_concurrency: int
    launcher_concurrency_range: tuple[int, int]


def read_template(path: Path = TEMPLATE) -> TemplateFacts:
    params = yaml_parse(path.read_text(encoding="utf-8"))["Parameters"]
    launcher = params["LauncherMaxConcurrency"]
    return TemplateFacts(
        max_in_flight=int(params["MaxInFlight"]["Default"]),
        default_cpu=int(params["DefaultCpu"]["Default"]),
        cpu_choices=tuple(int(v) for v in params["DefaultCpu"]["AllowedValues"]),
        capacity_strategy=str(params["CapacityStrategy"]["Default"]),
        capacity_choices=tuple(str(v) for v in params["CapacityStrategy"]["AllowedValues"]),
        assign_public_ip=str(params["AssignPublicIp"]["Default"]),
        launcher_max_concurrency=int(launcher["Default"]),
        launcher_concurrency_range=(int(launcher["MinValue"]), int(launcher["MaxValue"])),
    )


# ----------------------------------------------------------------------------- pure rules


def ecs_role_rows(found: bool) -> list[Row]:
    """docs/reference/aws.md §H.3: a first cluster with capacity providers needs the role."""
    check = f"ECS service-linked role {ECS_SERVICE_LINKED_ROLE}"
    if found:
        return [ok(check)]
    return [
        fail(
            f"{check} is missing",
            "aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com",
        )
    ]


def lambda_need(launcher_max_concurrency: int) -> int:
    """Concurrent executions the stack can use at once: the launcher's SQS maximum
    concurrency (docs/reference/aws.md §C.2), the poller and the failure handler."""
    return launcher_max_concurrency + POLLER_CONCURRENCY + FAILURE_HANDLER_CONCURRENCY


def lambda_rows(settings: dict[str, Any], launcher_max_concurrency: int) -> list[Row]:
    """Lambda's account concurrency against the stack's need: a warning, never a failure
    (docs/reference/aws.md §H.2, §H.16; https://docs.aws.amazon.com/lambda/latest/dg/limits.html)."""
    limit = settings.get("AccountLimit", {})
    quota = int(limit.get("ConcurrentExecutions", 0))
    unreserved = int(limit.get("UnreservedConcurrentExecutions", quota))
    need = lambda_need(launcher_max_concurrency)
    check = f"Lambda concurrency: quota {quota}, unreserved {unreserved}, stack needs {need}"
    fix = (
        "request a Lambda concurrency quota increase (Service Quotas, AWS Lambda, "
        "Concurrent executions)"
    )
    if unreserved < need:
        return [warn(check, f"{fix}, or lower LauncherMaxConcurrency (--launcher-max-concurrency)")]
    if quota < LOW_LAMBDA_QUOTA:
        return [warn(f"{check}; a quota under {LOW_LAMBDA_QUOTA} is a new account's", fix)]
    return [ok(check)]


def fargate_quota_codes(strategy: str) -> list[tuple[str, str]]:
    """The vCPU quotas a capacity strategy draws on: Spot, On-Demand, or both when Spot
    falls back to On-Demand (docs/reference/aws.md §B.4, §H.15)."""
    spot = ("Fargate Spot vCPU", SPOT_VCPU_QUOTA)
    on_demand = ("Fargate On-Demand vCPU", ON_DEMAND_VCPU_QUOTA)
    return {"spot": [spot], "on-demand": [on_demand]}.get(strategy, [spot, on_demand])


def fargate_rows(name: str, code: str, quota: float, max_in_flight: int, cpu: int) -> list[Row]:
    """One vCPU quota against MaxInFlight tasks of DefaultCpu (1024 units = 1 vCPU)."""
    task_vcpu = cpu / 1024
    need = max_in_flight * task_vcpu
    check = f"{name} quota ({code}): {quota:g}"
    fix = f"request a quota increase for {code} (Service Quotas, AWS Fargate)"
    if quota < task_vcpu:
        return [fail(f"{check}, one task needs {task_vcpu:g}", fix)]
    if max_in_flight == 0:
        return [warn(f"{check}; MaxInFlight 0 (unlimited) has no bound to compare", fix)]
    if quota < need:
        fits = int(quota // task_vcpu)
        return [
            warn(
                f"{check}, {max_in_flight} tasks x {task_vcpu:g} vCPU need {need:g}",
                f"{fix} to {need:g}, or lower MaxInFlight to {fits}",
            )
        ]
    return [ok(f"{check} >= {need:g} needed")]


def route_target(route_table: dict[str, Any] | None) -> str | None:
    """The target of a route table's active IPv4 default route, or None."""
    for route in (route_table or {}).get("Routes", []):
        if route.get("DestinationCidrBlock") != "0.0.0.0/0" or route.get("State") == "blackhole":
            continue
        for key in ("NatGatewayId", "GatewayId", "TransitGatewayId", "NetworkInterfaceId"):
            if route.get(key):
                return str(route[key])
        for key in ("InstanceId", "VpcPeeringConnectionId", "CarrierGatewayId"):
            if route.get(key):
                return str(route[key])
    return None


def subnet_rows(
    requested: Sequence[str],
    subnets: Sequence[dict[str, Any]],
    route_tables: dict[str, dict[str, Any] | None],
    assign_public_ip: str,
) -> list[Row]:
    """Each subnet exists and routes 0.0.0.0/0 to a NAT gateway, or to an internet gateway
    with a public IP (docs/reference/aws.md §H.17); several AZs give Fargate more capacity."""
    found = {s["SubnetId"]: s for s in subnets}
    rows: list[Row] = []
    for subnet_id in requested:
        if subnet_id not in found:
            rows.append(fail(f"subnet {subnet_id} does not exist", "pass a subnet of this region"))
            continue
        rows.append(
            _route_row(subnet_id, route_target(route_tables.get(subnet_id)), assign_public_ip)
        )
    zones = {s["AvailabilityZone"] for s in subnets}
    if len(subnets) > 0 and len(zones) == 1:
        rows.append(
            warn(
                f"subnets are all in one availability zone ({zones.pop()})",
                "add subnets in other AZs: Fargate then has more capacity",
            )
        )
    return rows


def _route_row(subnet_id: str, target: str | None, assign_public_ip: str) -> Row:
    check = f"subnet {subnet_id} routes to the internet"
    if target is None:
        return fail(
            f"{check}: no 0.0.0.0/0 route",
            "route 0.0.0.0/0 to a NAT gateway (or to an internet gateway with "
            "--assign-public-ip ENABLED)",
        )
    if target.startswith("nat-"):
        return ok(f"{check} (NAT gateway {target})")
    if target.startswith("igw-"):
        if assign_public_ip == "ENABLED":
            return ok(f"{check} (internet gateway {target}, public IP)")
        return fail(
            f"{check}: internet gateway {target} without a public IP",
            "deploy with AssignPublicIp=ENABLED (--assign-public-ip ENABLED), or use a "
            "subnet routed through a NAT gateway",
        )
    return warn(
        f"{check}: 0.0.0.0/0 goes to {target}",
        "make sure that path reaches Buildkite and the image registry (not checked)",
    )


def allows_https_egress(group: dict[str, Any]) -> bool:
    """A rule covering TCP 443 (or all traffic) to 0.0.0.0/0 or ::/0."""
    for rule in group.get("IpPermissionsEgress", []):
        protocol = str(rule.get("IpProtocol"))
        covers = protocol == "-1" or (
            protocol in {"tcp", "6"}
            and int(rule.get("FromPort", 0)) <= 443 <= int(rule.get("ToPort", 65535))
        )
        anywhere = any(r.get("CidrIp") == "0.0.0.0/0" for r in rule.get("IpRanges", [])) or any(
            r.get("CidrIpv6") == "::/0" for r in rule.get("Ipv6Ranges", [])
        )
        if covers and anywhere:
            return True
    return False


def security_group_rows(
    requested: Sequence[str], groups: Sequence[dict[str, Any]], subnet_vpcs: Iterable[str]
) -> list[Row]:
    """The groups exist, share the subnets' VPC, and together allow HTTPS egress."""
    found = {g["GroupId"]: g for g in groups}
    rows = [
        fail(f"security group {g} does not exist", "pass a security group of this region")
        for g in requested
        if g not in found
    ]
    vpcs = set(subnet_vpcs)
    for group in groups:
        if vpcs and group.get("VpcId") not in vpcs:
            rows.append(
                fail(
                    f"security group {group['GroupId']} is in {group.get('VpcId')}, "
                    f"the subnets in {', '.join(sorted(vpcs))}",
                    "pass security groups of the subnets' VPC",
                )
            )
    if groups and not any(allows_https_egress(g) for g in groups):
        rows.append(
            fail(
                "security groups allow no egress on TCP 443 to 0.0.0.0/0 or ::/0",
                "add an outbound rule: HTTPS (TCP 443) to 0.0.0.0/0",
            )
        )
    elif groups and not rows:
        rows.append(ok("security groups exist and allow HTTPS egress"))
    return rows


class TokenShape(Enum):
    CLUSTER = "a cluster token"
    BINARY = "binary, not a string"
    JSON_OBJECT = "a JSON object, not a plain string"
    PADDED = "a string with surrounding whitespace"
    OTHER = f"not a cluster token (no {CLUSTER_TOKEN_PREFIX} prefix)"


def token_shape(value: str | None) -> TokenShape:
    """What a secret's value looks like. The value goes no further than this function."""
    if value is None:
        return TokenShape.BINARY
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return TokenShape.JSON_OBJECT
    if value != value.strip():
        return TokenShape.PADDED
    if value.startswith(CLUSTER_TOKEN_PREFIX):
        return TokenShape.CLUSTER
    return TokenShape.OTHER


def secret_arn_rows(label: str, arn: str, full_arn: str | None) -> list[Row]:
    """IAM matches the full ARN with its six-character suffix (docs/reference/aws.md §H.5)."""
    if (full_arn is None and FULL_SECRET_ARN.match(arn)) or arn == full_arn:
        return [ok(f"{label}: full secret ARN")]
    return [
        fail(
            f"{label}: {arn} is a partial ARN"
            + (f" of {full_arn}" if full_arn and full_arn != arn else ""),
            "pass the full ARN from `aws secretsmanager describe-secret`",
        )
    ]


def secret_value_rows(label: str, shape: TokenShape) -> list[Row]:
    check = f"{label}: value is {shape.value}"
    if shape is TokenShape.CLUSTER:
        return [ok(check)]
    return [
        fail(
            check,
            "store the cluster agent token (bkct_...) as a plain string: "
            "aws secretsmanager put-secret-value --secret-id ARN --secret-string ...",
        )
    ]


def kms_rows(metadata: dict[str, Any]) -> list[Row]:
    """A key for the secrets must be enabled, symmetric and for encryption: Secrets Manager
    takes only symmetric keys (docs/reference/aws.md §H.17)."""
    arn = metadata.get("Arn", metadata.get("KeyId", "?"))
    problems = []
    if not metadata.get("Enabled") or metadata.get("KeyState") != "Enabled":
        problems.append(f"state {metadata.get('KeyState')}")
    if metadata.get("KeySpec", metadata.get("CustomerMasterKeySpec")) != "SYMMETRIC_DEFAULT":
        problems.append(f"spec {metadata.get('KeySpec')}")
    if metadata.get("KeyUsage") != "ENCRYPT_DECRYPT":
        problems.append(f"usage {metadata.get('KeyUsage')}")
    if not problems:
        return [ok(f"KMS key {arn} is enabled, symmetric, ENCRYPT_DECRYPT")]
    return [
        fail(
            f"KMS key {arn}: {', '.join(problems)}",
            "use an enabled symmetric ENCRYPT_DECRYPT key (aws kms enable-key, or another key)",
        )
    ]


# --------------------------------------------------------------------------- AWS calls


@dataclass(frozen=True)
class Options:
    region: str | None
    subnets: list[str]
    security_groups: list[str]
    cluster_token_secret_arn: str
    agent_token_secret_arn: str | None
    assign_public_ip: str
    max_in_flight: int
    default_cpu: int
    capacity_strategy: str
    launcher_max_concurrency: int
    secrets_kms_key_arn: str | None


ClientFactory = Callable[[str], object]
# An AWS answer (a parsed response), or why there is none.
Answer = dict[str, Any] | AwsError


class Probe:
    """The read-only AWS calls behind each check; an error becomes a FAIL row."""

    def __init__(self, client: ClientFactory) -> None:
        self._client = client

    def call(self, service: str, api: str, operation: str, **kwargs: object) -> Answer:
        """The answer, or an AwsError naming the API and the error code (never a traceback)."""
        try:
            answer: dict[str, Any] = getattr(self._client(service), operation)(**kwargs)
        except ClientError as error:
            return AwsError(api, str(error.response.get("Error", {}).get("Code", "Unknown")))
        except BotoCoreError as error:
            return AwsError(api, type(error).__name__)
        return answer

    def ecs_role(self) -> list[Row]:
        answer = self.call("iam", "iam:GetRole", "get_role", RoleName=ECS_SERVICE_LINKED_ROLE)
        if isinstance(answer, AwsError) and answer.code != "NoSuchEntity":
            return [answer.row("ECS service-linked role")]
        return ecs_role_rows(not isinstance(answer, AwsError))

    def lambda_concurrency(self, launcher_max_concurrency: int) -> list[Row]:
        answer = self.call("lambda", "lambda:GetAccountSettings", "get_account_settings")
        if isinstance(answer, AwsError):
            return [answer.row("Lambda concurrency")]
        return lambda_rows(answer, launcher_max_concurrency)

    def fargate_quotas(self, strategy: str, max_in_flight: int, cpu: int) -> list[Row]:
        rows: list[Row] = []
        for name, code in fargate_quota_codes(strategy):
            quota = self.fargate_quota(code)
            if isinstance(quota, AwsError):
                rows.append(quota.row(f"{name} quota ({code})"))
            else:
                rows += fargate_rows(name, code, quota, max_in_flight, cpu)
        return rows

    def fargate_quota(self, code: str) -> float | AwsError:
        """The applied value, else the default: GetServiceQuota has no applied value for
        some quotas (https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_GetServiceQuota.html)."""
        args = {"ServiceCode": FARGATE_SERVICE_CODE, "QuotaCode": code}
        answer = self.call(
            "service-quotas", "servicequotas:GetServiceQuota", "get_service_quota", **args
        )
        if isinstance(answer, AwsError) and answer.code == "NoSuchResourceException":
            answer = self.call(
                "service-quotas",
                "servicequotas:GetAWSDefaultServiceQuota",
                "get_aws_default_service_quota",
                **args,
            )
        if isinstance(answer, AwsError):
            return answer
        return float(answer["Quota"]["Value"])

    def network(self, options: Options) -> list[Row]:
        answer = self.call(
            "ec2", "ec2:DescribeSubnets", "describe_subnets", SubnetIds=options.subnets
        )
        if isinstance(answer, AwsError) and answer.code == "InvalidSubnetID.NotFound":
            subnets = self._each_subnet(options.subnets)
        elif isinstance(answer, AwsError):
            return [answer.row("subnets")]
        else:
            subnets = answer["Subnets"]
        tables = {s["SubnetId"]: self._route_table(s) for s in subnets}
        errors = {s: t for s, t in tables.items() if isinstance(t, AwsError)}
        good = {s: t for s, t in tables.items() if not isinstance(t, AwsError)}
        rows = [t.row(f"route table of {s}") for s, t in errors.items()]
        rows += subnet_rows(
            [s for s in options.subnets if s not in errors], subnets, good, options.assign_public_ip
        )
        return rows + self._security_groups(options.security_groups, {s["VpcId"] for s in subnets})

    def _each_subnet(self, subnet_ids: Sequence[str]) -> list[dict[str, Any]]:
        """One call per subnet, so one missing subnet does not hide the others."""
        found: list[dict[str, Any]] = []
        for subnet_id in subnet_ids:
            answer = self.call(
                "ec2", "ec2:DescribeSubnets", "describe_subnets", SubnetIds=[subnet_id]
            )
            if not isinstance(answer, AwsError):
                found += answer["Subnets"]
        return found

    def _route_table(self, subnet: dict[str, Any]) -> dict[str, Any] | AwsError | None:
        """The subnet's explicitly associated route table, else its VPC's main table."""
        for filters in (
            [{"Name": "association.subnet-id", "Values": [subnet["SubnetId"]]}],
            [
                {"Name": "vpc-id", "Values": [subnet["VpcId"]]},
                {"Name": "association.main", "Values": ["true"]},
            ],
        ):
            answer = self.call(
                "ec2", "ec2:DescribeRouteTables", "describe_route_tables", Filters=filters
            )
            if isinstance(answer, AwsError):
                return answer
            if answer["RouteTables"]:
                return dict(answer["RouteTables"][0])
        return None

    def _security_groups(self, group_ids: Sequence[str], vpcs: set[str]) -> list[Row]:
        groups: list[dict[str, Any]] = []
        for group_id in group_ids:  # one by one, so one missing group does not hide the others
            answer = self.call(
                "ec2", "ec2:DescribeSecurityGroups", "describe_security_groups", GroupIds=[group_id]
            )
            if isinstance(answer, AwsError) and answer.code != "InvalidGroup.NotFound":
                return [answer.row("security groups")]
            if not isinstance(answer, AwsError):
                groups += answer["SecurityGroups"]
        return security_group_rows(group_ids, groups, vpcs)

    def secret(self, label: str, arn: str) -> list[Row]:
        described = self.call(
            "secretsmanager", "secretsmanager:DescribeSecret", "describe_secret", SecretId=arn
        )
        if isinstance(described, AwsError):
            return [*secret_arn_rows(label, arn, None), described.row(label)]
        rows = secret_arn_rows(label, arn, str(described["ARN"]))
        answer = self.call(
            "secretsmanager", "secretsmanager:GetSecretValue", "get_secret_value", SecretId=arn
        )
        if isinstance(answer, AwsError):
            return [*rows, answer.row(f"{label}: read")]
        shape = token_shape(answer.get("SecretString"))
        del answer  # the value goes no further
        return rows + secret_value_rows(label, shape)

    def kms_key(self, key_arn: str) -> list[Row]:
        answer = self.call("kms", "kms:DescribeKey", "describe_key", KeyId=key_arn)
        if isinstance(answer, AwsError):
            return [answer.row(f"KMS key {key_arn}")]
        return kms_rows(answer["KeyMetadata"])


def run_checks(options: Options, client: ClientFactory) -> list[Row]:
    """Every check, in the order of docs/deploy.md "Before the first deploy"."""
    probe = Probe(client)
    rows = probe.ecs_role()
    rows += probe.lambda_concurrency(options.launcher_max_concurrency)
    rows += probe.fargate_quotas(
        options.capacity_strategy, options.max_in_flight, options.default_cpu
    )
    rows += probe.network(options)
    rows += probe.secret("cluster token secret", options.cluster_token_secret_arn)
    agent = options.agent_token_secret_arn
    if agent and agent != options.cluster_token_secret_arn:
        rows += probe.secret("agent token secret", agent)
    if options.secrets_kms_key_arn:
        rows += probe.kms_key(options.secrets_kms_key_arn)
    return rows


# ------------------------------------------------------------------------------- the CLI


def render(rows: Sequence[Row]) -> str:
    headers = ("check", "result", "how to fix")
    cells = [(r.check, r.result.value, r.fix) for r in rows]
    widths = [max(len(c[i]) for c in [headers, *cells]) for i in range(2)]
    lines = [
        f"{c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[2]}".rstrip() for c in [headers, *cells]
    ]
    lines.insert(1, "-" * min(max(len(line) for line in lines), 120))
    failed = sum(r.result is Result.FAIL for r in rows)
    warned = sum(r.result is Result.WARN for r in rows)
    lines.append(f"\n{len(rows)} checks: {failed} failed, {warned} warnings")
    return "\n".join(lines)


def _csv(value: str) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError("give at least one id")
    return items


def parser(facts: TemplateFacts) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="make preflight ARGS=...",
        description="Check an AWS account before the first sam deploy (read-only calls). "
        "Defaults are template.yaml's.",
    )
    p.add_argument("--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION)")
    p.add_argument("--subnets", type=_csv, required=True, help="Subnets, comma-separated")
    p.add_argument(
        "--security-groups", type=_csv, required=True, help="SecurityGroups, comma-separated"
    )
    p.add_argument("--cluster-token-secret-arn", required=True, help="ClusterTokenSecretArn")
    p.add_argument(
        "--agent-token-secret-arn", help="AgentTokenSecretArn (default: the cluster token's)"
    )
    p.add_argument(
        "--assign-public-ip",
        choices=["ENABLED", "DISABLED"],
        default=facts.assign_public_ip,
        help="AssignPublicIp (default %(default)s)",
    )
    p.add_argument(
        "--max-in-flight",
        type=int,
        default=facts.max_in_flight,
        help="MaxInFlight (default %(default)s)",
    )
    p.add_argument(
        "--default-cpu",
        type=int,
        choices=facts.cpu_choices,
        default=facts.default_cpu,
        help="DefaultCpu in CPU units (default %(default)s)",
    )
    p.add_argument(
        "--capacity-strategy",
        choices=facts.capacity_choices,
        default=facts.capacity_strategy,
        help="CapacityStrategy (default %(default)s)",
    )
    low, high = facts.launcher_concurrency_range
    p.add_argument(
        "--launcher-max-concurrency",
        type=int,
        choices=range(low, high + 1),
        metavar=f"{{{low}..{high}}}",
        default=facts.launcher_max_concurrency,
        help="LauncherMaxConcurrency (default %(default)s)",
    )
    p.add_argument("--secrets-kms-key-arn", help="customer KMS key of the secrets, if any")
    return p


def parse(argv: Sequence[str] | None, facts: TemplateFacts) -> Options:
    args = parser(facts).parse_args(argv)
    if args.max_in_flight < 0:
        parser(facts).error("--max-in-flight must be 0 (unlimited) or more")
    return Options(
        region=args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        subnets=args.subnets,
        security_groups=args.security_groups,
        cluster_token_secret_arn=args.cluster_token_secret_arn,
        agent_token_secret_arn=args.agent_token_secret_arn,
        assign_public_ip=args.assign_public_ip,
        max_in_flight=args.max_in_flight,
        default_cpu=args.default_cpu,
        capacity_strategy=args.capacity_strategy,
        launcher_max_concurrency=args.launcher_max_concurrency,
        secrets_kms_key_arn=args.secrets_kms_key_arn,
    )


def boto3_clients(region: str) -> ClientFactory:
    session = boto3.Session(region_name=region)
    cache: dict[str, object] = {}

    def client(service: str) -> object:
        if service not in cache:
            cache[service] = session.client(service)  # type: ignore[call-overload]
        return cache[service]

    return client


def main(argv: Sequence[str] | None = None, client: ClientFactory | None = None) -> int:
    options = parse(argv, read_template())
    if client is None:
        if not options.region:
            print("preflight: no region: pass --region or set AWS_REGION", file=sys.stderr)
            return 2
        try:
            client = boto3_clients(options.region)
        except NoRegionError:
            print("preflight: no region: pass --region or set AWS_REGION", file=sys.stderr)
            return 2
    print(f"preflight: region {options.region}, strategy {options.capacity_strategy}\n")
    rows = run_checks(options, client)
    print(render(rows))
    return 1 if any(r.result is Result.FAIL for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
