"""Terraform: formatting and validation of every environment, and environments/local applied end to end
against a moto server, checked with boto3 against the single definitions, then destroyed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import boto3
import pytest

from bookrec_local import definitions
from bookrec_local import terraform as tf
from bookrec_local.procs import free_port, moto_command, port_open, running_moto, start, wait_until

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not tf.terraform_available(), reason=f"terraform unavailable: {tf.why_unavailable()}")]
ENVIRONMENTS = sorted(p for p in (tf.INFRASTRUCTURE / "environments").iterdir() if p.is_dir())
PREFIX = "tfci"


def test_terraform_files_are_formatted():
    result = subprocess.run([tf.terraform_binary(), "fmt", "-check", "-recursive", str(tf.INFRASTRUCTURE)],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"not formatted: {result.stdout}"


@pytest.mark.parametrize("environment", ENVIRONMENTS, ids=lambda p: p.name)
def test_environment_validates(environment, tmp_path):
    terraform = tf.Terraform(environment, tmp_path)
    terraform.init(backend=False)
    result = terraform.run("validate", "-no-color", capture=True)
    assert "Success" in result.stdout


@pytest.fixture(scope="module")
def applied(tmp_path_factory):
    """environments/local applied in full to a fresh moto server; destroyed afterwards."""
    port = free_port()
    proc = start(moto_command(port), env={"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"})
    wait_until(lambda: port_open(port), 30, "moto server", proc)
    endpoint = f"http://127.0.0.1:{port}"
    state = tmp_path_factory.mktemp("terraform")
    started = time.monotonic()
    outputs = tf.apply_local(endpoint, PREFIX, state, tables_only=False)
    applied_in = time.monotonic() - started
    resources = len(json.loads((state / "terraform.tfstate").read_text())["resources"])
    print(f"\napplied {resources} resources against the emulator in {applied_in:.0f}s")

    def clients(service: str):
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    clients.endpoint, clients.state = endpoint, state  # for tests that run tooling against the same stack
    yield outputs, clients
    started = time.monotonic()
    tf.destroy_local(endpoint, PREFIX, state, tables_only=False)
    print(f"destroyed in {time.monotonic() - started:.0f}s")
    proc.terminate()


def test_tables_and_indexes_match_the_definitions(applied):
    outputs, client = applied
    dynamodb = client("dynamodb")
    for logical, spec in definitions.tables().items():
        table = dynamodb.describe_table(TableName=f"{PREFIX}-{logical}")["Table"]
        assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]}[spec["hash_key"]] == "HASH"
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        indexes = {i["IndexName"]: {k["AttributeName"] for k in i["KeySchema"]}
                   for i in table.get("GlobalSecondaryIndexes", [])}
        assert indexes == {g["name"]: {g["hash_key"], g["range_key"]} for g in spec["global_secondary_indexes"]}
        ttl = dynamodb.describe_time_to_live(TableName=f"{PREFIX}-{logical}")["TimeToLiveDescription"]
        if "ttl_attribute" in spec:
            assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == spec["ttl_attribute"], logical
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED", logical
    books = dynamodb.describe_table(TableName=f"{PREFIX}-books")["Table"]
    changes = next(i for i in books["GlobalSecondaryIndexes"] if i["IndexName"] == "changes")
    assert [(k["AttributeName"], k["KeyType"]) for k in changes["KeySchema"]] == [("change_shard", "HASH"),
                                                                                   ("changed_at", "RANGE")]
    assert changes["Projection"]["ProjectionType"] == "ALL"
    assert outputs["table_names"] == {k: f"{PREFIX}-{k}" for k in definitions.tables()}


def test_alb_rules_and_target_groups_match_the_definitions(applied):
    outputs, client = applied
    elb = client("elbv2")
    lb = elb.describe_load_balancers(Names=[f"{PREFIX}-alb"])["LoadBalancers"][0]
    assert outputs["alb_dns_name"] == lb["DNSName"]
    groups = {g["TargetGroupArn"]: g
              for g in elb.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])["TargetGroups"]}
    services = definitions.services()
    by_name = {g["TargetGroupName"]: g for g in groups.values()}
    for name, spec in services.items():
        group = by_name[f"{PREFIX}-{name}"]
        assert group["Port"] == spec["port"] and group["TargetType"] == "ip"
        assert group["HealthCheckPath"] == spec["health_path"]
    listener = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"][0]
    rules = elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
    default = next(r for r in rules if r["IsDefault"])
    assert default["Actions"][0]["FixedResponseConfig"]["StatusCode"] == "404"
    got = {}
    for rule in rules:
        if rule["IsDefault"]:
            continue
        patterns = [v for c in rule["Conditions"]
                    for v in c.get("PathPatternConfig", {}).get("Values", c.get("Values", []))]
        action = rule["Actions"][0]
        target = (groups[action["TargetGroupArn"]]["TargetGroupName"] if action["Type"] == "forward"
                  else f"fixed:{action['FixedResponseConfig']['StatusCode']}")
        got[int(rule["Priority"])] = (sorted(patterns), target)
    expected = {r["priority"]: (sorted(r["path_patterns"]),
                                f"{PREFIX}-{r['service']}" if "service" in r
                                else f"fixed:{r['fixed_response']['status_code']}")
                for r in definitions.routes()["rules"] if "service" in r or "fixed_response" in r}
    assert got == expected  # a static rule (the page) is CloudFront's and S3's, never a listener rule


def test_ecs_services_and_task_definitions(applied):
    outputs, client = applied
    ecs = client("ecs")
    services = definitions.services()
    assert outputs["service_names"] == {name: name for name in services}
    described = ecs.describe_services(cluster=outputs["cluster_name"], services=list(services))["services"]
    assert {s["serviceName"] for s in described} == set(services)
    for service in described:
        spec = services[service["serviceName"]]
        task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        container = task["containerDefinitions"][0]
        assert container["portMappings"][0]["containerPort"] == spec["port"]
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert env["BOOKS_TABLE"] == f"{PREFIX}-books" and env["PORT"] == str(spec["port"])
        assert all(env[k] == v for k, v in spec["environment"].items())
        assert task["requiresCompatibilities"] == ["FARGATE"] and task["cpu"] == str(spec["cpu"])
        if service["serviceName"] == "ratings":
            assert env["RECOMMENDATION_URL"] == "http://recommendation.bookrec.internal:8004"
        if spec.get("auth"):
            assert [s["name"] for s in container["secrets"]] == ["INTERNAL_TOKEN"]
        # REDIS_URL follows the `redis` flag of services.json, whichever services carry it.
        assert ("REDIS_URL" in env) == bool(spec.get("redis")), service["serviceName"]
        # Replicas read their artifacts from the bucket; services without any get no bucket.
        if "artifacts" in spec:
            assert env["ARTIFACT_BUCKET"] == outputs["artifact_bucket"]
            assert env["ARTIFACT_PREFIX"] == spec["artifacts"]
        else:
            assert "ARTIFACT_BUCKET" not in env
        # (The emulator does not report deploymentConfiguration back, so the circuit breaker is not checked here.)


def test_each_task_role_may_do_only_its_own_table_actions(applied):
    _, client = applied
    iam = client("iam")
    for name, spec in definitions.services().items():
        role = f"{PREFIX}-{name}-task"
        policy = iam.get_role_policy(RoleName=role, PolicyName="tables")["PolicyDocument"]
        policy = json.loads(policy) if isinstance(policy, str) else policy
        granted = {}
        for statement in policy["Statement"]:
            assert all(a.startswith("dynamodb:") and "*" not in a for a in statement["Action"])
            for resource in statement["Resource"]:
                table = resource.split(":table/")[1].split("/")[0]
                granted.setdefault(table, set()).update(statement["Action"])
        assert set(granted) == {f"{PREFIX}-{t}" for t in spec["tables"]}
        for table, level in spec["tables"].items():
            actions = granted[f"{PREFIX}-{table}"]
            writes = {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"}
            if level == "query":  # replicas: never a Scan (derived state comes from the builders)
                assert not actions & writes and "dynamodb:Scan" not in actions and "dynamodb:Query" in actions
            elif level == "read":
                assert not actions & writes and "dynamodb:Query" in actions
            elif level == "update":
                assert "dynamodb:UpdateItem" in actions and not actions & {"dynamodb:PutItem", "dynamodb:DeleteItem"}
            else:
                assert writes <= actions


def test_recommender_has_a_private_dns_name(applied):
    outputs, client = applied
    cloudmap = client("servicediscovery")
    namespaces = {n["Name"]: n["Id"] for n in cloudmap.list_namespaces()["Namespaces"]}
    assert "bookrec.internal" in namespaces
    names = {s["Name"] for s in cloudmap.list_services()["Services"]}
    assert "recommendation" in names
    assert outputs["internal_dns_names"] == {"recommendation": "recommendation.bookrec.internal"}


def test_redis_admits_exactly_the_services_with_the_redis_flag(applied):
    _, client = applied
    ec2 = client("ec2")
    groups = {g["GroupName"]: g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [groups[f"{PREFIX}-redis"]]}])
    admitted = {r["ReferencedGroupInfo"]["GroupId"] for r in rules["SecurityGroupRules"]
                if not r.get("IsEgress") and r.get("ReferencedGroupInfo") and r.get("FromPort") == 6379}
    expected = {groups[f"{PREFIX}-{name}"] for name, spec in definitions.services().items() if spec.get("redis")}
    # Builders of Redis services hold their build lease there.
    expected |= {groups[f"{PREFIX}-{name}-builder"] for name, spec in definitions.services().items()
                 if spec.get("redis") and "builder" in spec}
    assert admitted == expected


def test_user_pool_client_and_admin_group(applied):
    outputs, client = applied
    cognito = client("cognito-idp")
    pool_id, client_id = outputs["user_pool_id"], outputs["user_pool_client_id"]
    pool = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert pool["Name"] == PREFIX
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] >= 12
    assert not pool.get("UsernameAttributes")  # sign-in by username
    assert outputs["jwt_issuer"] == f"https://cognito-idp.us-east-1.amazonaws.com/{pool_id}"
    app = cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    assert "ClientSecret" not in app
    assert set(app["ExplicitAuthFlows"]) == {"ALLOW_USER_SRP_AUTH", "ALLOW_USER_PASSWORD_AUTH",
                                             "ALLOW_REFRESH_TOKEN_AUTH"}
    assert app["AccessTokenValidity"] == 1 and app["TokenValidityUnits"]["AccessToken"] == "hours"
    groups = cognito.list_groups(UserPoolId=pool_id)["Groups"]
    assert [g["GroupName"] for g in groups] == ["admin"]


def test_auth_services_verify_tokens_of_the_user_pool(applied):
    outputs, client = applied
    ecs = client("ecs")
    issuer = f"https://cognito-idp.us-east-1.amazonaws.com/{outputs['user_pool_id']}"
    expected = {"JWT_JWKS_URL": f"{issuer}/.well-known/jwks.json", "JWT_ISSUER": issuer,
                "JWT_AUDIENCE": outputs["user_pool_client_id"]}
    for name, spec in definitions.services().items():
        task = ecs.describe_task_definition(taskDefinition=f"{PREFIX}-{name}")["taskDefinition"]
        env = {e["name"]: e["value"] for e in task["containerDefinitions"][0]["environment"]}
        jwt = {k: v for k, v in env.items() if k.startswith("JWT_")}
        assert jwt == (expected if spec.get("auth") else {}), name


def test_tables_only_plans_no_identity(tmp_path):
    """The local stack's fast path (full_stack = false) creates the tables and nothing else."""
    terraform = tf.Terraform(tf.LOCAL_ENV, tmp_path)
    terraform.init(backend=False)
    plan = tmp_path / "plan"
    terraform.run("plan", "-no-color", "-refresh=false", f"-out={plan}", f"-state={tmp_path / 'none.tfstate'}",
                  "-var=endpoint=http://127.0.0.1:9", f"-var=name_prefix={PREFIX}", "-var=full_stack=false",
                  capture=True)
    shown = json.loads(terraform.run("show", "-json", str(plan), capture=True).stdout)
    created = {c["type"] for c in shown["resource_changes"] if "create" in c["change"]["actions"]}
    assert created == {"aws_dynamodb_table"}


def test_alb_edge_logs_protection_and_waf(applied):
    """Local has no certificate (HTTP on loopback), so HTTP routes there; dev's HTTP listener only redirects."""
    outputs, client = applied
    elb = client("elbv2")
    lb = elb.describe_load_balancers(Names=[f"{PREFIX}-alb"])["LoadBalancers"][0]
    attributes = {a["Key"]: a["Value"] for a in
                  elb.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["access_logs.s3.bucket"] == outputs["log_bucket"]
    assert attributes["access_logs.s3.prefix"] == "alb"
    assert attributes["deletion_protection.enabled"] == "false"  # the emulator's copy must be destroyable
    assert outputs["https"] is False
    listeners = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert [(listener["Port"], listener["Protocol"]) for listener in listeners] == [(80, "HTTP")]
    waf = client("wafv2")
    acl = waf.get_web_acl_for_resource(ResourceArn=lb["LoadBalancerArn"])["WebACL"]
    assert acl["ARN"] == outputs["web_acl_arn"]
    rules = {r["Name"]: r for r in acl["Rules"]}
    managed = {r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in acl["Rules"]
               if "ManagedRuleGroupStatement" in r["Statement"]}
    assert managed == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
                       "AWSManagedRulesAmazonIpReputationList"}
    # Behind CloudFront every request reaches the ALB from a CloudFront address: the per-address rate
    # rule is the CloudFront ACL's (test_cloudfront_web_acl_...); here requests without the origin
    # header that only this project's distribution adds are blocked first.
    assert "rate-per-client-address" not in rules
    origin = rules["require-origin-header"]
    assert origin["Priority"] == 0 and "Block" in origin["Action"]
    match = origin["Statement"]["NotStatement"]["Statement"]["ByteMatchStatement"]
    assert match["FieldToMatch"] == {"SingleHeader": {"Name": "x-origin-verify"}}
    assert match["PositionalConstraint"] == "EXACTLY" and len(match["SearchString"]) >= 32
    assert all(r["VisibilityConfig"]["CloudWatchMetricsEnabled"] for r in acl["Rules"])
    assert acl["VisibilityConfig"]["CloudWatchMetricsEnabled"]
    logging = waf.get_logging_configuration(ResourceArn=acl["ARN"])["LoggingConfiguration"]
    assert logging["LogDestinationConfigs"][0].endswith(f"log-group:aws-waf-logs-{PREFIX}")
    assert {"SingleHeader": {"Name": "authorization"}} in logging["RedactedFields"]


def test_log_bucket_is_private_encrypted_and_expires_logs(applied):
    outputs, client = applied
    s3 = client("s3")
    bucket = outputs["log_bucket"]
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rule = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]
    assert rule["Status"] == "Enabled" and rule["Expiration"]["Days"] == 90
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in policy["Statement"])


def _policy(iam, role: str, name: str) -> dict:
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    return json.loads(document) if isinstance(document, str) else document


def _s3_grants(policy: dict) -> dict[str, set[str]]:
    """S3 action => the resources it is allowed on."""
    granted: dict[str, set[str]] = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
        for action in actions:
            assert action.startswith("s3:") and "*" not in action, action
            for resource in resources:
                if action == "s3:ListBucket":
                    # Unconditioned: S3 checks it for a GetObject of a missing key (404, not 403).
                    assert not prefixes and not resource.endswith("*"), "ListBucket on the bucket itself"
                granted.setdefault(action, set()).add(resource)
    return granted


def test_artifact_bucket_is_versioned_private_encrypted_and_expires_old_versions(applied):
    outputs, client = applied
    s3 = client("s3")
    bucket = outputs["artifact_bucket"]
    assert bucket.startswith(f"{PREFIX}-artifacts-")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    rule, superseded = rules["expire-old-versions"], rules["expire-superseded-payloads"]
    assert rule["Status"] == "Enabled" and "Expiration" not in rule  # current artifacts never expire
    assert superseded["Filter"]["Tag"] == {"Key": "superseded", "Value": "true"}
    assert superseded["Expiration"]["Days"] == 2
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in policy["Statement"])


def test_replicas_read_only_their_own_artifact_prefix(applied):
    outputs, client = applied
    iam = client("iam")
    arn = f"arn:aws:s3:::{outputs['artifact_bucket']}"
    for name, spec in definitions.services().items():
        role = f"{PREFIX}-{name}-task"
        names = iam.list_role_policies(RoleName=role)["PolicyNames"]
        if "artifacts" not in spec:
            assert names == ["tables"], name
            continue
        assert sorted(names) == ["artifacts", "tables"], name
        prefix = spec["artifacts"]
        assert _s3_grants(_policy(iam, role, "artifacts")) == {
            "s3:GetObject": {f"{arn}/{prefix}/*"},
            "s3:ListBucket": {arn},
        }, name


def test_builder_roles_scan_their_tables_and_write_only_their_own_prefix(applied):
    outputs, client = applied
    iam = client("iam")
    arn = f"arn:aws:s3:::{outputs['artifact_bucket']}"
    builders = {name: spec for name, spec in definitions.services().items() if "builder" in spec}
    assert builders, "services.json names no builder"
    for name, spec in builders.items():
        role = f"{PREFIX}-{name}-builder"
        assert sorted(iam.list_role_policies(RoleName=role)["PolicyNames"]) == ["artifacts", "tables"]
        trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "ecs-tasks.amazonaws.com"}]
        tables = {}
        for statement in _policy(iam, role, "tables")["Statement"]:
            for resource in statement["Resource"]:
                tables.setdefault(resource.split(":table/")[1].split("/")[0], set()).update(statement["Action"])
        assert set(tables) == {f"{PREFIX}-{t}" for t in spec["builder"]["tables"]}
        for table, level in spec["builder"]["tables"].items():
            actions = tables[f"{PREFIX}-{table}"]
            assert not actions & {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"}
            assert ("dynamodb:Scan" in actions) == (level == "read")
        prefix = spec["artifacts"]
        assert _s3_grants(_policy(iam, role, "artifacts")) == {
            "s3:GetObject": {f"{arn}/{prefix}/*"},
            "s3:PutObject": {f"{arn}/{prefix}/*"},
            "s3:PutObjectTagging": {f"{arn}/{prefix}/*"},
            "s3:ListBucket": {arn},
        }, name
    # The scheduler may run only the builders' task definitions and pass only their roles.
    role = f"{PREFIX}-builder-scheduler"
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "scheduler.amazonaws.com"}]
    statements = {s["Sid"]: s for s in _policy(iam, role, "run-builders")["Statement"]}
    assert set(statements) == {"RunBuilderTasks", "PassBuilderRoles"}
    assert statements["RunBuilderTasks"]["Action"] in (["ecs:RunTask"], "ecs:RunTask")
    assert sorted(statements["RunBuilderTasks"]["Resource"]) == sorted(
        f"arn:aws:ecs:us-east-1:123456789012:task-definition/{PREFIX}-{name}-builder:*" for name in builders)
    assert statements["PassBuilderRoles"]["Action"] in (["iam:PassRole"], "iam:PassRole")
    passed = {r.rsplit("/", 1)[1] for r in statements["PassBuilderRoles"]["Resource"]}
    assert passed == {f"{PREFIX}-{name}-builder" for name in builders} | {f"{PREFIX}-task-execution"}
    assert statements["PassBuilderRoles"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


def test_builder_task_definitions_and_schedules(applied):
    outputs, client = applied
    ecs = client("ecs")
    services = definitions.services()
    builders = {name: spec for name, spec in services.items() if "builder" in spec}
    assert set(outputs["builder_task_definition_arns"]) == set(builders)
    for name, spec in builders.items():
        task = ecs.describe_task_definition(taskDefinition=f"{PREFIX}-{name}-builder")["taskDefinition"]
        assert task["taskDefinitionArn"] == outputs["builder_task_definition_arns"][name]
        assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"
        assert task["cpu"] == str(spec["builder"]["cpu"]) and task["memory"] == str(spec["builder"]["memory"])
        assert task["taskRoleArn"].endswith(f"/{PREFIX}-{name}-builder")
        # search's builder writes its snapshot to a file first: a disk sized for it (21 GiB at least)
        assert task.get("ephemeralStorage") == ({"sizeInGiB": 21} if name == "search" else None), name
        [container] = task["containerDefinitions"]
        service_task = ecs.describe_task_definition(taskDefinition=f"{PREFIX}-{name}")["taskDefinition"]
        assert container["image"] == service_task["containerDefinitions"][0]["image"]
        assert container["command"] == ["python", "-m", spec["builder"]["module"]]
        assert not container.get("portMappings")
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert env["ARTIFACT_BUCKET"] == outputs["artifact_bucket"] and env["ARTIFACT_PREFIX"] == spec["artifacts"]
        assert env["AWS_REGION"] == "us-east-1" and env["LOG_LEVEL"] == "INFO"
        assert all(env[f"{table.upper()}_TABLE"] == f"{PREFIX}-{table}" for table in spec["builder"]["tables"])
        assert all(env[k] == v for k, v in spec["builder"]["environment"].items())
        assert ("REDIS_URL" in env) == bool(spec.get("redis")), name
        logs = container["logConfiguration"]
        assert logs["logDriver"] == "awslogs"
        assert logs["options"]["awslogs-group"] == f"/{PREFIX}/{name}"
        assert logs["options"]["awslogs-stream-prefix"] == f"{name}-builder"
    ec2 = client("ec2")
    groups = {g["GroupName"]: g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    private = [{"Name": "tag:Name", "Values": [f"{PREFIX}-private-*"]}]
    subnets = {s["SubnetId"] for s in ec2.describe_subnets(Filters=private)["Subnets"]}
    assert subnets
    scheduler = client("scheduler")
    assert set(outputs["builder_schedule_names"]) == set(builders)
    cluster = ecs.describe_clusters(clusters=[outputs["cluster_name"]])["clusters"][0]["clusterArn"]
    for name, spec in builders.items():
        schedule = scheduler.get_schedule(Name=outputs["builder_schedule_names"][name])
        assert schedule["ScheduleExpression"] == f"rate({spec['builder']['schedule_minutes']} minutes)"
        assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"} and schedule["State"] == "ENABLED"
        target = schedule["Target"]
        assert target["Arn"] == cluster and target["RoleArn"].endswith(f"/{PREFIX}-builder-scheduler")
        parameters = target["EcsParameters"]
        assert parameters["TaskDefinitionArn"] == outputs["builder_task_definition_arns"][name]
        assert parameters["LaunchType"] == "FARGATE" and parameters.get("TaskCount", 1) == 1
        network = parameters["NetworkConfiguration"]["awsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"
        assert network["SecurityGroups"] == [groups[f"{PREFIX}-{name}-builder"]]
        assert set(network["Subnets"]) == subnets


def test_vpc_flow_logs_default_group_and_described_rules(applied):
    _, client = applied
    ec2 = client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [PREFIX]}])["Vpcs"][0]["VpcId"]
    flow_logs = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])["FlowLogs"]
    assert [(f["TrafficType"], f["LogDestinationType"]) for f in flow_logs] == [("ALL", "s3")]
    assert flow_logs[0]["LogDestination"].endswith("/vpc-flow-logs/")
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
    default = next(g for g in groups if g["GroupName"] == "default")
    assert default["IpPermissions"] == [] and default["IpPermissionsEgress"] == []
    ours = [g for g in groups if g["GroupName"] != "default"]
    builders = [name for name, spec in definitions.services().items() if "builder" in spec]
    # one per service and builder, the ALB's, Redis's
    assert len(ours) == len(definitions.services()) + len(builders) + 2
    for name in builders:  # builders take no connections
        assert next(g for g in ours if g["GroupName"] == f"{PREFIX}-{name}-builder")["IpPermissions"] == []
    assert all(g["Description"] for g in ours)
    redis = next(g for g in ours if g["GroupName"] == f"{PREFIX}-redis")
    assert "rate limits" in redis["Description"]
    # (The emulator's DescribeSecurityGroupRules drops descriptions of group references; the groups keep them.)
    grants = [(g["GroupName"], p.get("FromPort"), grant) for g in ours
              for p in g["IpPermissions"] + g["IpPermissionsEgress"]
              for grant in p["IpRanges"] + p["UserIdGroupPairs"] + p.get("Ipv6Ranges", [])]
    assert grants and [g for g in grants if not g[2].get("Description")] == []
    # The emulator drops the descriptions of prefix-list grants (the ALB's, from CloudFront) in both
    # describe calls: the applied rule's own description is read from the state.
    state = json.loads((client.state / "terraform.tfstate").read_text())
    prefix_rules = [instance["attributes"] for resource in state["resources"]
                    if resource["type"] == "aws_vpc_security_group_ingress_rule" and resource["name"] == "cloudfront"
                    for instance in resource["instances"]]
    assert len(prefix_rules) == 1 and "CloudFront" in prefix_rules[0]["description"]
    assert all(p.get("Description") or p["PrefixListId"] == prefix_rules[0]["prefix_list_id"]
               for g in ours for perm in g["IpPermissions"] for p in perm.get("PrefixListIds", []))


def api_path_patterns() -> list[str]:
    """CloudFront's API behaviours as routes.json defines them: every path pattern of every rule that
    forwards to a service, lowest priority first, each once (fixed-response and static rules excluded)."""
    services = definitions.services()
    rules = sorted((r for r in definitions.routes()["rules"] if r.get("service") in services),
                   key=lambda r: r["priority"])
    patterns: list[str] = []
    for rule in rules:
        patterns += [p for p in rule["path_patterns"] if p not in patterns]
    return patterns


CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # AWS managed cache policy CachingDisabled
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"  # AWS managed cache policy CachingOptimized
# Managed origin request policy AllViewerExceptHostHeader: every viewer header (Authorization included)
# and query string, with the origin's own Host (the name the ALB's certificate covers).
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"


def _distribution(outputs, client) -> dict:
    return client("cloudfront").get_distribution(Id=outputs["web_distribution_id"])["Distribution"]


def test_distribution_behaviours_follow_the_routes(applied):
    """The page from S3 by default; every API path of routes.json, in its order, to the ALB, uncached."""
    outputs, client = applied
    assert api_path_patterns() and outputs["web_api_path_patterns"] == api_path_patterns()
    distribution = _distribution(outputs, client)
    assert outputs["web_domain_name"] == distribution["DomainName"]
    assert outputs["web_url"] == f"https://{distribution['DomainName']}/"
    config = distribution["DistributionConfig"]
    assert config["Enabled"] and config["DefaultRootObject"] == "index.html"
    origins = {o["Id"]: o for o in config["Origins"]["Items"]}
    assert set(origins) == {"page", "api"}
    assert origins["page"]["DomainName"] == f"{outputs['web_bucket']}.s3.us-east-1.amazonaws.com"
    assert origins["api"]["DomainName"] == outputs["alb_dns_name"]  # local has no domain_name
    custom = origins["api"]["CustomOriginConfig"]
    assert custom["OriginProtocolPolicy"] == "https-only" and custom["OriginSslProtocols"]["Items"] == ["TLSv1.2"]
    [header] = origins["api"]["CustomHeaders"]["Items"]
    assert header["HeaderName"] == "X-Origin-Verify" and len(header["HeaderValue"]) >= 32
    default = config["DefaultCacheBehavior"]
    assert default["TargetOriginId"] == "page" and default["ViewerProtocolPolicy"] == "redirect-to-https"
    assert default["CachePolicyId"] == CACHING_OPTIMIZED
    assert sorted(default["AllowedMethods"]["Items"]) == ["GET", "HEAD"]
    behaviours = config["CacheBehaviors"]["Items"]
    assert [b["PathPattern"] for b in behaviours] == api_path_patterns()
    for behaviour in behaviours:
        assert behaviour["TargetOriginId"] == "api", behaviour["PathPattern"]
        assert behaviour["ViewerProtocolPolicy"] == "https-only"
        assert sorted(behaviour["AllowedMethods"]["Items"]) == sorted(
            ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"])
        assert behaviour["CachePolicyId"] == CACHING_DISABLED
        assert behaviour["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST
    # The page's own paths and the internal endpoints never become API behaviours.
    patterns = set(api_path_patterns())
    for rule in definitions.routes()["rules"]:
        if "service" not in rule:
            assert not patterns & set(rule["path_patterns"]), rule


def test_cloudfront_web_acl_and_an_alb_that_admits_only_cloudfront(applied):
    outputs, client = applied
    waf = client("wafv2")
    config = _distribution(outputs, client)["DistributionConfig"]
    assert config["WebACLId"] == outputs["cloudfront_web_acl_arn"]
    assert ":global/webacl/" in outputs["cloudfront_web_acl_arn"]  # CLOUDFRONT scope
    acl_id = outputs["cloudfront_web_acl_arn"].rsplit("/", 1)[1]
    acl = waf.get_web_acl(Name=f"{PREFIX}-cdn", Scope="CLOUDFRONT", Id=acl_id)["WebACL"]
    rules = {r["Name"]: r for r in acl["Rules"]}
    rate = rules["rate-per-client-address"]["Statement"]["RateBasedStatement"]
    assert rate["AggregateKeyType"] == "IP" and rate["Limit"] == 10000  # the reader's address, seen here
    managed = {r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in acl["Rules"]
               if "ManagedRuleGroupStatement" in r["Statement"]}
    assert managed == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
                       "AWSManagedRulesAmazonIpReputationList"}
    assert "require-origin-header" not in rules
    logging = waf.get_logging_configuration(ResourceArn=acl["ARN"])["LoggingConfiguration"]
    assert logging["LogDestinationConfigs"][0].endswith(f"log-group:aws-waf-logs-{PREFIX}-cdn")
    assert {"SingleHeader": {"Name": "authorization"}} in logging["RedactedFields"]
    # The ALB's group admits CloudFront's origin-facing prefix list and nothing else.
    ec2 = client("ec2")
    [prefix_list] = ec2.describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": ["com.amazonaws.global.cloudfront.origin-facing"]}]
    )["PrefixLists"]
    [group] = ec2.describe_security_groups(GroupNames=[f"{PREFIX}-alb"])["SecurityGroups"]
    ingress = [(p.get("FromPort"), p["IpRanges"], p.get("Ipv6Ranges", []), p["UserIdGroupPairs"],
                [x["PrefixListId"] for x in p.get("PrefixListIds", [])]) for p in group["IpPermissions"]]
    assert ingress == [(80, [], [], [], [prefix_list["PrefixListId"]])]  # 80: the emulator has no certificate


def test_page_bucket_is_private_versioned_and_read_only_by_the_distribution(applied):
    outputs, client = applied
    s3 = client("s3")
    bucket = outputs["web_bucket"]
    assert bucket.startswith(f"{PREFIX}-web-")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30 and "Expiration" not in rule
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    statements = {st["Sid"]: st for st in policy["Statement"]}
    assert set(statements) == {"CloudFrontReadsThePage", "TlsOnly"}
    read = statements["CloudFrontReadsThePage"]
    distribution = _distribution(outputs, client)
    assert read["Effect"] == "Allow" and read["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert read["Action"] == "s3:GetObject" and read["Resource"] == f"arn:aws:s3:::{bucket}/*"
    assert read["Condition"] == {"StringEquals": {"AWS:SourceArn": distribution["ARN"]}}
    assert statements["TlsOnly"]["Effect"] == "Deny"
    assert statements["TlsOnly"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # Origin access control (the emulator does not report the origin's OAC id back: the plan below checks it).
    controls = client("cloudfront").list_origin_access_controls()["OriginAccessControlList"]["Items"]
    [oac] = [c for c in controls if c["Name"] == f"{PREFIX}-web"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"], oac["SigningProtocol"]) == (
        "s3", "always", "sigv4")


def script_src(csp: str) -> list[str]:
    directives = {d.split()[0]: d.split()[1:] for d in (part.strip() for part in csp.split(";")) if d}
    return directives.get("script-src", directives["default-src"])


def test_content_security_policy_allows_no_inline_script(applied):
    outputs, _ = applied
    csp = outputs["web_content_security_policy"]
    assert script_src(csp) == ["'self'"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "https://covers.openlibrary.org" in csp
    assert "connect-src 'self' https://cognito-idp.us-east-1.amazonaws.com" in csp
    assert script_src("default-src 'self'; script-src 'self' 'unsafe-inline'") == ["'self'", "'unsafe-inline'"]


@pytest.mark.skipif(shutil.which("aws") is None or shutil.which("jq") is None, reason="needs the aws CLI and jq")
def test_publish_web_uploads_with_headers_prunes_and_invalidates(applied, tmp_path):
    """tooling/publish-web.sh against the emulator's bucket and distribution, read from the applied state,
    publishing a page folder of its own (not the repository's web/)."""
    outputs, client = applied
    site = tmp_path / "site"
    (site / "vendor").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><title>t</title><script type=module src=/web/app.js></script>")
    (site / "app.js").write_text("export const x = 1;\n")
    (site / "style.3f9a1c2b7d.css").write_text("body{}\n")
    (site / "vendor" / "lib.mjs").write_text("export default 1;\n")
    (site / "cover.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (site / ".hidden").write_text("never published")
    (site / "README.md").write_text("# not part of the page\n")  # the local ALB does not serve these either
    (site / "screenshots").mkdir()
    (site / "screenshots" / "home.png").write_bytes(b"\x89PNG\r\n")
    s3 = client("s3")
    bucket = outputs["web_bucket"]
    # The emulator speaks plain HTTP, and it enforces the bucket's TLS-only deny on object requests: the
    # statement is lifted while the script runs (checked in test_page_bucket_...) and put back after.
    policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    lifted = json.loads(policy)
    lifted["Statement"] = [st for st in lifted["Statement"] if st["Sid"] != "TlsOnly"]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(lifted))
    try:
        s3.put_object(Bucket=bucket, Key="web/stale.js", Body=b"old")  # a file the folder no longer has
        terraform = tf.Terraform(tf.LOCAL_ENV, client.state)
        env = {**terraform.env, "TF_STATE": str(client.state / "terraform.tfstate"), "WEB_DIR": str(site),
               "AWS_ENDPOINT_URL": client.endpoint, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
        script = definitions.ROOT / "tooling" / "publish-web.sh"
        result = subprocess.run([str(script), "local"], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
        assert keys == {"index.html", "web/index.html", "web/app.js", "web/style.3f9a1c2b7d.css",
                        "web/vendor/lib.mjs", "web/cover.svg", "web/config.json"}
        # Where the page signs in on AWS: the user pool's own endpoint and its app client.
        config = json.loads(s3.get_object(Bucket=bucket, Key="web/config.json")["Body"].read())
        assert config == {"auth": {"endpoint": "https://cognito-idp.us-east-1.amazonaws.com/",
                                   "client_id": outputs["user_pool_client_id"], "flow": "USER_PASSWORD_AUTH"}}

        def head(key: str) -> tuple[str, str]:
            meta = s3.head_object(Bucket=bucket, Key=key)
            return meta["ContentType"], meta["CacheControl"]

        assert head("index.html") == ("text/html; charset=utf-8", "no-cache")
        assert head("web/index.html") == ("text/html; charset=utf-8", "no-cache")
        assert head("web/app.js") == ("text/javascript; charset=utf-8", "public, max-age=300")
        assert head("web/vendor/lib.mjs") == ("text/javascript; charset=utf-8", "public, max-age=300")
        assert head("web/style.3f9a1c2b7d.css") == ("text/css; charset=utf-8", "public, max-age=31536000, immutable")
        assert head("web/cover.svg") == ("image/svg+xml", "public, max-age=300")
        assert head("web/config.json") == ("application/json", "no-cache")
    finally:
        # Every version and delete marker goes while requests may still be made: the emulator's
        # force_destroy of a versioned bucket with objects stalls the destroy.
        listed = s3.list_object_versions(Bucket=bucket)
        for version in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    cloudfront = client("cloudfront")
    listed = cloudfront.list_invalidations(DistributionId=outputs["web_distribution_id"])["InvalidationList"]
    latest = cloudfront.get_invalidation(DistributionId=outputs["web_distribution_id"], Id=listed["Items"][0]["Id"])
    paths = latest["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
    assert sorted(paths) == ["/", "/index.html", "/web/*"]  # unhashed files changed: their prefix too


ALB_CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
PAGE_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/def"


@pytest.mark.parametrize("variables, refusal", [
    ({}, "Invalid value for variable"),
    # a name without a zone to validate it in
    ({"domain_name": "api.example.com", "web_domain_name": "books.example.com", "web_certificate_arn": PAGE_CERT},
     "dev serves HTTPS only"),
    # CloudFront reaches the ALB over HTTPS by a name its certificate covers
    ({"certificate_arn": ALB_CERT, "web_domain_name": "books.example.com", "web_certificate_arn": PAGE_CERT},
     "CloudFront reaches the ALB over HTTPS by name"),
    # the page needs its own name and certificate (TLS 1.2+ is impossible on *.cloudfront.net)
    ({"certificate_arn": ALB_CERT, "domain_name": "api.example.com"}, "The page is served over TLS 1.2+ only"),
    ({"certificate_arn": ALB_CERT, "domain_name": "api.example.com", "web_domain_name": "books.example.com"},
     "The page is served over TLS 1.2+ only"),
    ({"certificate_arn": ALB_CERT, "domain_name": "api.example.com", "web_domain_name": "books.example.com",
      "web_certificate_arn": PAGE_CERT}, None),
    ({"domain_name": "api.example.com", "zone_id": "Z123", "web_domain_name": "books.example.com"}, None),
])
def test_dev_refuses_to_plan_without_https(tmp_path, variables, refusal):
    """environments/dev's variables alone (no provider, no backend): the validation runs at plan time."""
    directory = tmp_path / "dev-variables"
    directory.mkdir()
    (directory / "variables.tf").write_text((tf.INFRASTRUCTURE / "environments" / "dev" / "variables.tf").read_text())
    terraform = tf.Terraform(directory, tmp_path / "work")
    terraform.init(backend=False)
    args = [f"-var={k}={v}" for k, v in variables.items()]
    command = [tf.terraform_binary(), f"-chdir={directory}", "plan", "-no-color", "-input=false", *args]
    result = subprocess.run(command, env=terraform.env, capture_output=True, text=True)
    assert (result.returncode != 0) is (refusal is not None), result.stderr
    if refusal:
        assert refusal in " ".join(result.stderr.split()), result.stderr


DEV_SHAPE = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.100" }
  }
}
provider "aws" {
  region                      = "eu-west-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true
  endpoints {
    ec2            = "ENDPOINT"
    secretsmanager = "ENDPOINT"
    sts            = "ENDPOINT"
  }
}
provider "aws" {
  alias                       = "us_east_1"
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  endpoints {
    sts = "ENDPOINT"
  }
}
# What environments/dev passes (its own module block, minus the S3 backend), with domains to certify.
module "platform" {
  source                   = "PLATFORM"
  providers                = { aws = aws, aws.us_east_1 = aws.us_east_1 }
  name_prefix              = "tfdev"
  region                   = "eu-west-1"
  domain_name              = "api.dev.example.com"
  zone_id                  = "Z0123456789"
  require_https            = true
  waf                      = true
  cache_replication_group  = true
  cache_transit_encryption = true
  autoscaling              = true
  web                      = true
  web_domain_name          = "books.dev.example.com"
}
"""


def test_the_dev_shape_plans_with_its_edge(tmp_path):
    """The composition dev uses, planned against the emulator (data sources only): HTTPS with a
    DNS-validated certificate and a redirecting HTTP listener, WAF, logs, deletion protection, and the
    Redis replication group with failover, TLS, snapshots and the AUTH token from Secrets Manager."""
    with running_moto() as moto:
        root = tmp_path / "dev-shape"
        root.mkdir()
        platform = os.path.relpath(tf.INFRASTRUCTURE / "modules" / "platform", root)
        (root / "main.tf").write_text(DEV_SHAPE.replace("ENDPOINT", moto.endpoint).replace("PLATFORM", platform))
        terraform = tf.Terraform(root, tmp_path / "work")
        terraform.init(backend=False)
        plan = tmp_path / "plan"
        terraform.run("plan", "-no-color", f"-out={plan}", f"-state={tmp_path / 'none.tfstate'}", capture=True)
        shown = json.loads(terraform.run("show", "-json", str(plan), capture=True).stdout)
    planned = {c["address"]: c["change"]["after"] for c in shown["resource_changes"]}

    def one(suffix: str) -> dict:
        matches = [after for address, after in planned.items() if address.endswith(suffix)]
        assert len(matches) == 1, (suffix, [a for a in planned if suffix.split("[")[0] in a])
        return matches[0]

    redirect = one("module.alb[0].aws_lb_listener.http_redirect[0]")["default_action"][0]
    assert redirect["type"] == "redirect" and redirect["redirect"][0]["status_code"] == "HTTP_301"
    assert redirect["redirect"][0]["protocol"] == "HTTPS"
    assert not any(a.endswith("aws_lb_listener.http[0]") for a in planned)
    assert one("module.alb[0].aws_lb_listener.https[0]")["ssl_policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    certificate = one("module.alb[0].aws_acm_certificate.this[0]")
    assert certificate["domain_name"] == "api.dev.example.com" and certificate["validation_method"] == "DNS"
    assert any(".aws_route53_record.validation[" in a for a in planned)
    lb = one("module.alb[0].aws_lb.this")
    assert lb["enable_deletion_protection"] and lb["drop_invalid_header_fields"]
    assert lb["access_logs"][0]["enabled"] and lb["access_logs"][0]["prefix"] == "alb"
    assert one("module.alb[0].aws_wafv2_web_acl_association.this[0]")
    assert one("module.waf[0].aws_wafv2_web_acl.this")["scope"] == "REGIONAL"
    assert one("module.network[0].aws_flow_log.this[0]")["traffic_type"] == "ALL"
    assert not any(".aws_elasticache_cluster." in a for a in planned)
    redis = one("module.cache[0].aws_elasticache_replication_group.this[0]")
    assert redis["automatic_failover_enabled"] and redis["multi_az_enabled"] and redis["num_cache_clusters"] == 2
    assert redis["transit_encryption_enabled"] and redis["at_rest_encryption_enabled"]
    assert redis["snapshot_retention_limit"] == 7
    assert redis["auth_token"]  # the generated secret's value (Terraform shows sensitive values in the plan JSON)
    assert one('aws_secretsmanager_secret.generated["redis-auth-token"]')["name"] == "tfdev/redis-auth-token"
    assert all(t["deletion_protection_enabled"] for a, t in planned.items() if ".aws_dynamodb_table." in a)
    assert one("module.network[0].aws_vpc_endpoint.s3")["vpc_endpoint_type"] == "Gateway"
    builders = [name for name, spec in definitions.services().items() if "builder" in spec]
    for name in builders:
        schedule = one(f'module.ecs[0].aws_scheduler_schedule.builder["{name}"]')
        assert schedule["flexible_time_window"] == [{"maximum_window_in_minutes": None, "mode": "OFF"}]
        ecs_parameters = schedule["target"][0]["ecs_parameters"][0]
        assert ecs_parameters["launch_type"] == "FARGATE"
        assert ecs_parameters["network_configuration"][0]["assign_public_ip"] is False
    assert not one("module.artifacts[0].aws_s3_bucket.this")["force_destroy"]

    # The page: its own name with a certificate issued in us-east-1, TLS 1.2+, the security headers on
    # every behaviour, the CLOUDFRONT-scope ACL, and an ALB that admits CloudFront on 443 only.
    distribution = one("module.web[0].aws_cloudfront_distribution.this")
    assert distribution["aliases"] == ["books.dev.example.com"]
    certificate = distribution["viewer_certificate"][0]
    assert certificate["minimum_protocol_version"] == "TLSv1.2_2021" and certificate["ssl_support_method"] == "sni-only"
    assert not certificate["cloudfront_default_certificate"]
    page_certificate = one("module.web[0].aws_acm_certificate.this[0]")
    assert page_certificate["domain_name"] == "books.dev.example.com"
    assert {one(f'module.web[0].aws_route53_record.alias["{t}"]')["name"] for t in ("A", "AAAA")} == {
        "books.dev.example.com"}
    [api_origin] = [o for o in distribution["origin"] if o["origin_id"] == "api"]
    assert api_origin["domain_name"] == "api.dev.example.com"  # the name the ALB's certificate covers
    assert [b["path_pattern"] for b in distribution["ordered_cache_behavior"]] == api_path_patterns()
    # The S3 origin signs with the origin access control (its id is unknown until created: the
    # configuration shows the reference).
    web = shown["configuration"]["root_module"]["module_calls"]["platform"]["module"]["module_calls"]["web"]["module"]
    [resource] = [r for r in web["resources"] if r["address"] == "aws_cloudfront_distribution.this"]
    [page_config] = [o for o in resource["expressions"]["origin"] if o["origin_id"]["constant_value"] == "page"]
    assert "aws_cloudfront_origin_access_control.this" in page_config["origin_access_control_id"]["references"]
    assert "aws_s3_bucket.this" in page_config["domain_name"]["references"]
    headers = one("module.web[0].aws_cloudfront_response_headers_policy.this[0]")["security_headers_config"][0]
    csp = headers["content_security_policy"][0]["content_security_policy"]
    assert script_src(csp) == ["'self'"] and "unsafe-inline" not in csp
    assert headers["strict_transport_security"][0]["access_control_max_age_sec"] >= 31536000
    assert headers["content_type_options"][0]["override"] and headers["frame_options"][0]["frame_option"] == "DENY"
    assert headers["referrer_policy"][0]["referrer_policy"] == "strict-origin-when-cross-origin"
    assert one("module.waf_cloudfront[0].aws_wafv2_web_acl.this")["scope"] == "CLOUDFRONT"
    assert one("module.waf[0].aws_wafv2_web_acl.this")["scope"] == "REGIONAL"
    [cloudfront_ingress] = [after for address, after in planned.items()
                            if ".module.alb[0].aws_vpc_security_group_ingress_rule.cloudfront[" in address]
    assert cloudfront_ingress["from_port"] == 443 and cloudfront_ingress["to_port"] == 443
    assert not any(".aws_vpc_security_group_ingress_rule.http[" in a or ".aws_vpc_security_group_ingress_rule.https["
                   in a for a in planned)


SIZING = """
module "sizing" {
  source          = "MODULE"
  catalogue_books = var.books
  replica_floor   = { cpu = REPLICA_CPU, memory = REPLICA_MEMORY }
  builder_floor   = { cpu = BUILDER_CPU, memory = BUILDER_MEMORY }
}
variable "books" { type = number }
output "replica" { value = module.sizing.replica }
output "builder" { value = module.sizing.builder }
output "needs" { value = module.sizing.needs }
output "builder_ephemeral_storage" { value = module.sizing.builder_ephemeral_storage }
"""

# Fargate's valid (cpu, memory MiB) pairs, Linux (the AWS documentation's table, written out again here).
FARGATE = ([(256, m) for m in (512, 1024, 2048)] + [(512, m * 1024) for m in range(1, 5)]
           + [(1024, m * 1024) for m in range(2, 9)] + [(2048, m * 1024) for m in range(4, 17)]
           + [(4096, m * 1024) for m in range(8, 31)] + [(8192, m * 1024) for m in range(16, 61, 4)]
           + [(16384, m * 1024) for m in range(32, 121, 8)])


@pytest.fixture(scope="module")
def sizing(tmp_path_factory):
    """modules/search_sizing alone (no provider, no resources) with services.json's floors: books -> outputs,
    or the refusal's text."""
    root = tmp_path_factory.mktemp("sizing")
    search = definitions.services()["search"]
    floors = {"REPLICA_CPU": search["cpu"], "REPLICA_MEMORY": search["memory"],
              "BUILDER_CPU": search["builder"]["cpu"], "BUILDER_MEMORY": search["builder"]["memory"],
              "MODULE": str(tf.INFRASTRUCTURE / "modules" / "search_sizing")}
    text = SIZING
    for name, value in floors.items():
        text = text.replace(name, str(value))
    (root / "main.tf").write_text(text)
    terraform = tf.Terraform(root, root / "work")
    terraform.init(backend=False)

    def sized(books: int) -> dict | str:
        try:
            terraform.apply({"books": str(books)})
        except subprocess.CalledProcessError:
            command = [tf.terraform_binary(), f"-chdir={root}", "plan", "-no-color", f"-var=books={books}"]
            result = subprocess.run(command, env=terraform.env, capture_output=True, text=True)
            return " ".join(result.stderr.split())
        return terraform.outputs()

    sized.floors = search
    return sized


@pytest.mark.parametrize("books", [0, 11_893, 1_000_000, 10_000_000, 40_000_000])
def test_search_tasks_are_the_smallest_fargate_size_the_catalogue_fits(sizing, books):
    out = sizing(books)
    search = sizing.floors
    for task, floor in (("replica", search), ("builder", search["builder"])):
        cpu, memory, need = out[task]["cpu"], out[task]["memory"], out["needs"][task]
        assert (cpu, memory) in FARGATE, (task, cpu, memory)
        assert memory >= max(need, floor["memory"]) and cpu >= floor["cpu"]
        # no valid pair with less memory (or as much and fewer cpu units) fits
        assert not [(c, m) for c, m in FARGATE if c >= floor["cpu"] and max(need, floor["memory"]) <= m
                    and (m, c) < (memory, cpu)], (task, books)
    if books <= 11_893:  # the bundled catalogue: services.json's own sizes
        assert out["replica"] == {"cpu": search["cpu"], "memory": search["memory"]}
        assert out["builder"] == {"cpu": search["builder"]["cpu"], "memory": search["builder"]["memory"]}


def test_search_sizing_grows_with_the_catalogue_and_refuses_past_one_replica(sizing):
    needs = [sizing(n)["needs"] for n in (0, 1_000_000, 10_000_000)]
    for task in ("replica", "builder"):
        per_million = needs[1][task] - needs[0][task]
        assert per_million > 0 and abs((needs[2][task] - needs[0][task]) - 10 * per_million) <= 10
    refusal = sizing(10**9)
    assert "holds at most" in refusal and "16 vCPU, 120 GB" in refusal, refusal
    ceiling = int(refusal.split("holds at most ")[1].split()[0])
    largest = sizing(ceiling)
    assert max(largest["replica"]["memory"], largest["builder"]["memory"]) == 122_880
    assert "holds at most" in sizing(ceiling + 1_000)
    assert "whole number" in sizing(-1)


def test_the_search_builder_disk_holds_its_snapshot_file(sizing):
    """Fargate's ephemeral storage: 21-200 GiB when set; the builder's snapshot (533 B a book measured at 1M)
    with room to spare, the image beside it."""
    disks = {n: sizing(n)["builder_ephemeral_storage"] for n in (0, 1_000_000, 10_000_000, 30_000_000)}
    assert disks[0] == disks[1_000_000] == disks[10_000_000] == 21  # 10M books: a ~5.3 GB snapshot
    assert disks[30_000_000] > 21 and (disks[30_000_000] - 4) * 2**30 >= 30_000_000 * 533 * 1.2
    refusal = sizing(10**9)
    ceiling = int(refusal.split("holds at most ")[1].split()[0])
    largest = sizing(ceiling)["builder_ephemeral_storage"]
    assert (largest - 4) * 2**30 >= ceiling * 533 * 1.2 and largest <= 200
