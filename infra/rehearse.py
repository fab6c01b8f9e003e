"""The deploy rehearsal: infra/template.yaml's semantics checked against what the code does.

    rehearse.py env [--param NAME=VALUE]... [--bind LOGICAL=VALUE]...
        Each function's environment as the expanded template gives it (JSON), for the binaries'
        tests; --bind gives a resource's Ref its test value (a secret's ARN on moto, ...).
    rehearse.py check [TEMPLATE]
        Checks TEMPLATE (default infra/template.yaml) against the last recording
        (target/rehearsal/sessions/*.json, written by tests/tests/lambda_binaries.rs): every
        recorded AWS call allowed by its function's role in every combination of conditions,
        the surplus grants (each removed or listed in infra/rehearsal-allow.yaml), the resource
        policies, every variable read set or documented, every trigger matching. One line per
        mismatch; exit status 1 if there is any.
    rehearse.py mutations
        Proves the check can fail: nine edits to a copy of the template, each must be named.

The template is expanded as CloudFormation does (AWS::LanguageExtensions, then the SAM
transform, both as the SAM CLI ships them) with account 123456789012, us-east-1 and stack
`mcpush`; Ref/GetAtt/Sub are resolved to the ARNs CloudFormation would create (generated
physical names follow a fixed scheme). IAM is evaluated here (Action/NotAction,
Resource/NotResource wildcards, explicit Deny over Allow, the condition operators the template
uses); EventBridge and event-source-mapping patterns with moto's event pattern matcher."""
import argparse
import copy
import itertools
import json
import logging
import os
import pathlib
import re
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
RECORDING = ROOT / "target" / "rehearsal" / "sessions"
ALLOW_LIST = ROOT / "infra" / "rehearsal-allow.json"
ACCOUNT, REGION, STACK, PARTITION = "123456789012", "us-east-1", "mcpush", "aws"
os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
os.environ.setdefault("SAM_CLI_TELEMETRY", "0")
# The SAM translator warns of its own unpublished usage metrics when it is garbage-collected.
logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)

# Values for the parameters without a default (and the names the rehearsal binds).
BASE = {
    "UploadBucketName": "rehearsal-uploads",
    "JobTemplate": "rehearsal-template",
    "AllowedOrigins": r"https://app\.example\.com",
}
# The conditions that change what a role grants or what a function is given: each combination
# of these is expanded and checked.
TOGGLES = {
    "tokens": [{"RequireTokens": "true"}, {"RequireTokens": "false"}],
    "tracing": [{"EnableTracing": "false"}, {"EnableTracing": "true"}],
    "oidc": [{}, {"OidcIssuer": "https://issuer.example.com/pool", "OidcAudience": "web"}],
    "tables": [{}, {"AdoptExistingTables": "true", "ExistingStatusTableStreamArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/MediaConvertJobIdToStatus/stream/2026-01-01T00:00:00.000"}],
    "queue": [{}, {"MediaConvertQueueArn": f"arn:aws:mediaconvert:{REGION}:{ACCOUNT}:queues/rehearsal"}],
    "webhook": [{}, {"WebhookUrl": "https://hooks.example.com/mediaconvert", "WebhookSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:webhook-AbCdEf"}],
}
# Variables Lambda itself sets (and the ones only the tests' harness sets).
PROVIDED = re.compile(r"^(AWS_|_HANDLER$|_X_AMZN_|LAMBDA_|TZ$)")


def fail_fast(message):
    sys.exit(f"infra/rehearse.py: {message}")


# ------------------------------------------------------------------ expansion
def load(path):
    try:
        from samcli.yamlhelper import yaml_parse
    except ImportError:
        fail_fast("needs the SAM CLI (pip install aws-sam-cli); scripts/rehearse installs it")
    return yaml_parse(pathlib.Path(path).read_text())


class NoManagedPolicies:
    def load(self):
        return {}


def expand(template, params):
    from samcli.lib.cfn_language_extensions.api import process_template
    from samcli.lib.cfn_language_extensions.models import PseudoParameterValues
    from samtranslator.translator.transform import transform

    values = {name: p.get("Default") for name, p in template["Parameters"].items()}
    values.update(BASE)
    values.update(params)
    pseudo = PseudoParameterValues(region=REGION, account_id=ACCOUNT, stack_name=STACK, partition=PARTITION)
    expanded = process_template(copy.deepcopy(template), parameter_values=values, pseudo_parameters=pseudo)
    expanded["Transform"] = "AWS::Serverless-2016-10-31"
    binaries = {}
    for name, resource in expanded["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/code.zip"
            binaries[name] = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary", name)
    globals_env = set(expanded.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    transformed = transform(expanded, values, NoManagedPolicies())
    stack = Stack(transformed["Resources"], values, binaries, globals_env)
    stack.conditions = transformed.get("Conditions", {})
    # A resource whose Condition is false is not created.
    stack.resources = {n: r for n, r in stack.resources.items() if "Condition" not in r or stack.condition(r["Condition"])}
    return stack


class Stack:
    """One expanded template with its intrinsics resolved the way CloudFormation would."""

    def __init__(self, resources, params, binaries, globals_env, binds=None):
        self.resources, self.params, self.binds = resources, params, dict(binds or {})
        self.binaries = binaries  # logical id -> binary name
        self.globals_env = globals_env
        self.conditions = {}

    def condition(self, name):
        holds = self.__dict__.setdefault("holds", {})
        if name not in holds:
            holds[name] = bool(self.truth(self.conditions[name]))
        return holds[name]

    def truth(self, node):
        (key, arg), = node.items()
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Equals":
            return str(self.value(arg[0])) == str(self.value(arg[1]))
        if key == "Fn::Not":
            return not self.truth(arg[0])
        if key == "Fn::And":
            return all(self.truth(a) for a in arg)
        if key == "Fn::Or":
            return any(self.truth(a) for a in arg)
        fail_fast(f"condition function {key} is not evaluated by the rehearsal; add it")

    # physical ids, by type
    def ref(self, name):
        if name in self.binds:
            return self.binds[name]
        pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::StackName": STACK,
                  "AWS::Partition": PARTITION, "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            value = self.params[name]
            return value if not isinstance(value, (int, float)) else str(value)
        resource = self.resources.get(name)
        if resource is None:
            raise KeyError(f"Ref to unknown {name}")
        kind, props = resource["Type"], resource.get("Properties", {})
        generated = f"{STACK}-{name}-R3H34R5AL"
        if kind == "AWS::DynamoDB::Table":
            return self.value(props.get("TableName", generated))
        if kind == "AWS::S3::Bucket":
            return self.value(props.get("BucketName", generated.lower()))
        if kind == "AWS::SecretsManager::Secret":
            return f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{generated}"
        if kind == "AWS::SNS::Topic":
            return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{generated}"
        if kind == "AWS::Lambda::Function":
            return self.value(props.get("FunctionName", generated))
        if kind == "AWS::Logs::LogGroup":
            return self.value(props.get("LogGroupName", generated))
        if kind in ("AWS::IAM::Role", "AWS::Events::Rule"):
            return generated
        if kind.startswith("AWS::ApiGatewayV2::"):
            return re.sub(r"[^a-z0-9]", "", name.lower())[:10]
        return name

    def getatt(self, name, attribute):
        resource = self.resources[name]
        kind, ref = resource["Type"], self.ref(name)
        arn = {
            "AWS::DynamoDB::Table": f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{ref}",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{ref.rsplit('/', 1)[-1]}",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{ref}",
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{ref}:*",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{ref}",
            "AWS::Events::Rule": f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/{ref}",
            "AWS::Events::ApiDestination": f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:api-destination/{ref}/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            "AWS::Events::Connection": f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:connection/{ref}/1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809",
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{ref}",
        }.get(kind)
        if attribute == "Arn" and arn:
            return arn
        if attribute == "StreamArn" and kind == "AWS::DynamoDB::Table":
            return f"{arn}/stream/2026-01-01T00:00:00.000"
        if attribute == "QueueName":
            return ref.rsplit("/", 1)[-1]
        if attribute == "ApiEndpoint":
            return f"https://{ref}.execute-api.{REGION}.amazonaws.com"
        raise KeyError(f"GetAtt {name}.{attribute}")

    def sub(self, text, variables=None):
        def one(match):
            key = match.group(1)
            if variables and key in variables:
                return str(self.value(variables[key]))
            if "." in key and not key.startswith("AWS::"):
                return str(self.getatt(*key.split(".", 1)))
            return str(self.ref(key))
        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def value(self, node):
        """The concrete value of a template node (None for AWS::NoValue)."""
        if isinstance(node, str):
            return self.sub(node)
        if isinstance(node, list):
            return [v for v in (self.value(n) for n in node) if v is not None]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                return self.getatt(*(arg if isinstance(arg, list) else arg.split(".", 1)))
            if key == "Fn::Sub":
                return self.sub(arg) if isinstance(arg, str) else self.sub(arg[0], arg[1])
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.value(arg[1]))
            if key == "Fn::Select":
                return self.value(arg[1])[int(self.value(arg[0]))]
            if key == "Fn::Split":
                return self.value(arg[1]).split(arg[0])
            if key == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not None}

    # the parts the checks need
    def functions(self):
        """binary name -> logical id of the AWS::Lambda::Function."""
        return {self.binaries[n]: n for n, r in self.resources.items() if r["Type"] == "AWS::Lambda::Function" and n in self.binaries}

    def environment(self, logical):
        props = self.resources[logical]["Properties"]
        return {k: str(v) for k, v in self.value(props.get("Environment", {}).get("Variables", {})).items()}

    def role_statements(self, logical):
        """(role name, [(policy name, statement)]) of a function's execution role."""
        role_ref = self.resources[logical]["Properties"]["Role"]
        role_name = role_ref["Fn::GetAtt"][0] if isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref else None
        if role_name is None:
            fail_fast(f"{logical}: the rehearsal only knows roles given as !GetAtt Role.Arn")
        props = self.resources[role_name]["Properties"]
        if props.get("ManagedPolicyArns"):
            fail_fast(f"{role_name}: managed policies cannot be evaluated offline; use inline policies")
        statements = []
        for policy in props.get("Policies", []):
            document = self.value(policy["PolicyDocument"])
            for statement in listify(document.get("Statement", [])):
                statements.append((policy["PolicyName"], statement))
        return role_name, statements


def listify(x):
    return x if isinstance(x, list) else [x]


# ------------------------------------------------------------------ IAM
def glob(pattern, text, case=True):
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, 0 if case else re.IGNORECASE) is not None


def condition_holds(conditions, context):
    for operator, tests in (conditions or {}).items():
        base = operator.removesuffix("IfExists")
        for key, expected in tests.items():
            expected = [str(e).lower() if base == "Bool" else str(e) for e in listify(expected)]
            if key not in context:
                if operator.endswith("IfExists") or "Not" in base:
                    continue
                return False
            actual = str(context[key]).lower() if base == "Bool" else str(context[key])
            if base in ("StringEquals", "ArnEquals", "Bool"):
                ok = actual in expected
            elif base in ("StringLike", "ArnLike"):
                ok = any(glob(e, actual) for e in expected)
            elif base == "StringEqualsIgnoreCase":
                ok = actual.lower() in [e.lower() for e in expected]
            elif base in ("StringNotEquals", "ArnNotEquals"):
                ok = actual not in expected
            elif base in ("StringNotLike", "ArnNotLike"):
                ok = not any(glob(e, actual) for e in expected)
            else:
                fail_fast(f"condition operator {operator} is not evaluated by the rehearsal; add it")
            if not ok:
                return False
    return True


def statement_matches(statement, action, resource, context):
    if "Action" in statement:
        if not any(glob(a, action, case=False) for a in listify(statement["Action"])):
            return False
    elif any(glob(a, action, case=False) for a in listify(statement.get("NotAction", []))):
        return False
    if "Resource" in statement:
        if not any(glob(r, resource) for r in listify(statement["Resource"])):
            return False
    elif any(glob(r, resource) for r in listify(statement.get("NotResource", []))):
        return False
    return condition_holds(statement.get("Condition"), context)


def allowed(statements, action, resource, context):
    """IAM's identity-policy decision: an explicit Deny wins, else any Allow, else denied."""
    matching = [s for _, s in statements if statement_matches(s, action, resource, context)]
    if any(s.get("Effect") == "Deny" for s in matching):
        return "denied explicitly"
    return None if any(s.get("Effect") == "Allow" for s in matching) else "not allowed"


# ------------------------------------------------------------------ sessions (the recording)
def sessions():
    files = sorted(RECORDING.glob("*.json"))
    if not files:
        fail_fast(f"no recording in {RECORDING.relative_to(ROOT)}; run scripts/rehearse (it runs the binaries' tests)")
    return [json.loads(f.read_text()) | {"file": f.name} for f in files]


def toggle_values(params):
    """Which value of each toggle a parameter set selects."""
    chosen = {}
    for toggle, options in TOGGLES.items():
        chosen[toggle] = next((i for i, o in enumerate(options) if o and all(
            params.get(k) == v if v in ("true", "false") else bool(params.get(k)) for k, v in o.items())), 0)
    return chosen


def combos():
    for choice in itertools.product(*(range(len(o)) for o in TOGGLES.values())):
        params = {}
        for toggle, i in zip(TOGGLES, choice):
            params.update(TOGGLES[toggle][i])
        yield dict(zip(TOGGLES, choice)), params


def translate(text, session, stack):
    """A recorded string in the combination's world: the session's concrete names and bound
    resources replaced by what the expanded template names them."""
    pairs = [(str(v), str(stack.ref(k))) for k, v in session.get("binds", {}).items() if k in stack.resources]
    pairs += [(str(v), str(stack.ref(k))) for k, v in session.get("parameters", {}).items()
              if k in stack.params and isinstance(v, str) and len(v) > 3 and k not in sum((list(o) for opts in TOGGLES.values() for o in opts), [])]
    for concrete, symbolic in sorted(pairs, key=lambda p: -len(p[0])):
        if concrete != symbolic:
            text = text.replace(concrete, symbolic)
    return text


# ------------------------------------------------------------------ the service's own calls
def service_calls(stack, logical):
    """What AWS services do with a function's role on its behalf, from the template: Lambda's log
    writes and traces, a stream mapping's reads, failure destinations' sends."""
    props = stack.resources[logical]["Properties"]
    calls = []
    group = props.get("LoggingConfig", {}).get("LogGroup")
    group = stack.value(group) if group else f"/aws/lambda/{stack.ref(logical)}"
    stream = f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:2026/01/01/[$LATEST]0123456789abcdef"
    calls += [("logs:CreateLogStream", stream, "Lambda writes the function's logs"), ("logs:PutLogEvents", stream, "Lambda writes the function's logs")]
    if stack.value(props.get("TracingConfig", {}).get("Mode")) == "Active":
        calls += [("xray:PutTraceSegments", "*", "Lambda sends active traces"), ("xray:PutTelemetryRecords", "*", "Lambda sends active traces")]
    for name, r in stack.resources.items():
        p = r.get("Properties", {})
        if r["Type"] == "AWS::Lambda::EventSourceMapping" and stack.value(p.get("FunctionName")) == stack.ref(logical):
            source = stack.value(p["EventSourceArn"])
            if ":dynamodb:" in source:
                for action in ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"):
                    calls.append((action, source, f"{name} reads the stream"))
                calls.append(("dynamodb:ListStreams", "*", f"{name} lists the table's streams"))
            destination = stack.value(p.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"))
            if destination:
                calls.append(("sqs:SendMessage", destination, f"{name} sends failed batches"))
        if r["Type"] == "AWS::Lambda::EventInvokeConfig" and stack.value(p.get("FunctionName")) == stack.ref(logical):
            destination = stack.value(p.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"))
            if destination:
                calls.append(("sqs:SendMessage", destination, f"{name} sends failed invocations"))
    return calls


# ------------------------------------------------------------------ checks
class Report:
    def __init__(self):
        self.failures, self.notes = {}, []

    def fail(self, line, key=None):
        """A mismatch; the same one in several combinations is one line naming how many."""
        self.failures.setdefault(line, []).append(key)

    @property
    def problems(self):
        lines = []
        for line, keys in self.failures.items():
            keys = [k for k in keys if k is not None]
            lines.append(f"{line} [{describe(keys[0])}{f' and {len(keys) - 1} more combinations' if len(keys) > 1 else ''}]" if keys else line)
        return lines

    def note(self, line):
        if line not in self.notes:
            self.notes.append(line)


def env_relevant(stacks, function):
    """The toggles that change the names of the variables a function is given."""
    relevant = set()
    for key, stack in stacks.items():
        fns = stack.functions()
        if function not in fns:
            continue
        names = set(stack.environment(fns[function]))
        for i, toggle in enumerate(TOGGLES):
            for j in range(len(TOGGLES[toggle])):
                other = key[:i] + (j,) + key[i + 1:]
                ofns = stacks[other].functions()
                if function in ofns and set(stacks[other].environment(ofns[function])) != names:
                    relevant.add(toggle)
    return relevant


def check_roles(stacks, recorded, allow_list, report, summary):
    known = {f for s in stacks.values() for f in s.functions()}
    for session in recorded:
        for function in sorted(set(session.get("functions", {})) - known):
            report.fail(f"{session['file']}: calls by {function!r}, which is no function of the template (unsigned, or a binary the template lost)")
    for function in sorted({f for s in stacks.values() for f in s.functions()}):
        relevant = env_relevant(stacks, function)
        counted = {"recorded": set(), "denied": set(), "surplus": set(), "unrehearsed": []}
        for key, stack in stacks.items():
            fns = stack.functions()
            if function not in fns:
                continue
            logical = fns[function]
            role, statements = stack.role_statements(logical)
            combo = ",".join(f"{t}={i}" for t, i in zip(TOGGLES, key))
            calls, ran = [], False
            for session in recorded:
                chosen = toggle_values(session.get("parameters", {}))
                if any(chosen[t] != key[list(TOGGLES).index(t)] for t in relevant):
                    continue
                ran |= function in session.get("functions", {})
                for call in session.get("functions", {}).get(function, {}).get("calls", []):
                    resources = [translate(r, session, stack) for r in call["resources"]]
                    context = {k: translate(v, session, stack) for k, v in call.get("context", {}).items()}
                    calls += [(call["action"], r, context, f"recorded in {session['file']}") for r in resources]
            if not ran:
                counted["unrehearsed"].append(combo)
            calls += [(a, r, {}, why) for a, r, why in service_calls(stack, logical)]
            searched = f"{role} ({', '.join(sorted({p for p, _ in statements}))}: {len(statements)} statements)"
            for action, resource, context, why in calls:
                if why.startswith("recorded"):
                    counted["recorded"].add((action, resource))
                verdict = allowed(statements, action, resource, context)
                if verdict:
                    counted["denied"].add((action, resource))
                    report.fail(f"{function}: {action} on {resource} {verdict} by {searched} ({why})", key)
            for _, statement in statements:
                if statement.get("Effect") != "Allow":
                    continue
                for action in listify(statement.get("Action", [])):
                    for resource in listify(statement.get("Resource", [])):
                        used = any(glob(action, a, case=False) and glob(resource, r) and condition_holds(statement.get("Condition"), c) for a, r, c, _ in calls)
                        if used:
                            continue
                        entry = next((e for e in allow_list if glob(e["function"], function) and glob(e["action"], action, case=False) and glob(e["resource"], resource)), None)
                        reason = entry and entry["reason"]
                        if entry:
                            entry["kept"] = True
                        if reason is None:
                            report.fail(f"{function}: {role} grants {action} on {resource}, which no recorded call uses; remove it or list it in {ALLOW_LIST.relative_to(ROOT)}", key)
                        else:
                            counted["surplus"].add(f"{action} on {resource} - {reason}")
        if len(counted["unrehearsed"]) == sum(1 for s in stacks.values() if function in s.functions()):
            report.fail(f"{function}: no recorded session ran it; the binaries' tests must exercise it")
        elif counted["unrehearsed"]:
            report.note(f"{function}: not rehearsed under {len(counted['unrehearsed'])} combination(s) whose environment differs: {sorted(relevant)}")
        summary[function] = counted


def describe(key):
    return "; ".join(f"{t}:{['off','on'][i] if t not in ('tokens','tables') else (['on','off'][i] if t == 'tokens' else ['created','adopted'][i])}" for t, i in zip(TOGGLES, key))


def check_resource_policies(stack, report):
    """Who may invoke each function and send to the dead-letter queue, against who does."""
    permissions = [r["Properties"] for r in stack.resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    permissions = [stack.value(p) for p in permissions]
    invokers = []  # (function name, principal, source arn, what)
    for name, r in stack.resources.items():
        p = r.get("Properties", {})
        if r["Type"] == "AWS::Events::Rule":
            for target in p.get("Targets", []):
                arn = stack.value(target["Arn"])
                if ":lambda:" in arn:
                    invokers.append((arn, "events.amazonaws.com", stack.getatt(name, "Arn"), f"rule {name}"))
                    continue
                # Any other target (an API destination) is invoked with the target's role.
                role_ref = target.get("RoleArn")
                role = role_ref["Fn::GetAtt"][0] if isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref else None
                if role is None or role not in stack.resources:
                    report.fail(f"rule {name}: target {arn} has no RoleArn of this template to invoke it with")
                    continue
                role_props = stack.resources[role]["Properties"]
                trust = [("trust", s) for s in listify(stack.value(role_props["AssumeRolePolicyDocument"])["Statement"])
                         if "events.amazonaws.com" in listify(s.get("Principal", {}).get("Service", []))]
                verdict = allowed(trust, "sts:AssumeRole", "*", {"aws:SourceAccount": ACCOUNT})
                if verdict:
                    report.fail(f"rule {name}: events.amazonaws.com may not assume {role} ({verdict})")
                statements = [(pol["PolicyName"], st) for pol in role_props.get("Policies", [])
                              for st in listify(stack.value(pol["PolicyDocument"])["Statement"])]
                action = "events:InvokeApiDestination" if ":api-destination/" in arn else "unknown target"
                verdict = allowed(statements, action, arn, {})
                if verdict:
                    report.fail(f"rule {name}: {role} does not let it {action} on {arn} ({verdict})")
        if r["Type"] == "AWS::S3::Bucket":
            for config in p.get("NotificationConfiguration", {}).get("LambdaConfigurations", []):
                invokers.append((stack.value(config["Function"]), "s3.amazonaws.com", stack.getatt(name, "Arn"), f"bucket {name}"))
        if r["Type"] == "AWS::ApiGatewayV2::Api" and "Body" in p:
            api = stack.ref(name)
            for path, methods in p["Body"].get("paths", {}).items():
                for method, operation in methods.items():
                    uri = stack.value(operation["x-amazon-apigateway-integration"]["uri"])
                    function = re.search(r"functions/(.+)/invocations", uri).group(1)
                    invokers.append((function, "apigateway.amazonaws.com", f"arn:{PARTITION}:execute-api:{REGION}:{ACCOUNT}:{api}/$default/{method.upper()}{path}", f"{method.upper()} {path}"))
        if r["Type"] == "AWS::ApiGatewayV2::Route":
            target = stack.value(p["Target"]).removeprefix("integrations/")
            integration = next(n for n, x in stack.resources.items() if x["Type"] == "AWS::ApiGatewayV2::Integration" and stack.ref(n) == target)
            uri = stack.value(stack.resources[integration]["Properties"]["IntegrationUri"])
            function = re.search(r"functions/(.+)/invocations", uri).group(1)
            api = stack.value(p["ApiId"])
            invokers.append((function, "apigateway.amazonaws.com", f"arn:{PARTITION}:execute-api:{REGION}:{ACCOUNT}:{api}/{stack.params['StageName']}/{stack.value(p['RouteKey'])}", f"route {stack.value(p['RouteKey'])}"))
        if r["Type"] == "AWS::ApiGatewayV2::Authorizer":
            uri = stack.value(p["AuthorizerUri"])
            function = re.search(r"functions/(.+)/invocations", uri).group(1)
            invokers.append((function, "apigateway.amazonaws.com", f"arn:{PARTITION}:execute-api:{REGION}:{ACCOUNT}:{stack.value(p['ApiId'])}/authorizers/{stack.ref(name)}", f"authorizer {name}"))
    for function_arn, principal, source, what in invokers:
        name = function_arn.rsplit(":", 1)[-1]
        ok = any(p["Action"] == "lambda:InvokeFunction" and p["Principal"] == principal
                 and p["FunctionName"] in (name, function_arn)
                 and glob(p.get("SourceArn", "*"), source) for p in permissions)
        if not ok:
            report.fail(f"{name}: no AWS::Lambda::Permission lets {principal} invoke it from {source} ({what})")
    # EventBridge's dead-letter queues: the queue's policy must let the rule send.
    policies = [stack.value(r["Properties"]) for r in stack.resources.values() if r["Type"] == "AWS::SQS::QueuePolicy"]
    for name, r in stack.resources.items():
        if r["Type"] != "AWS::Events::Rule":
            continue
        for target in r["Properties"].get("Targets", []):
            dlq = stack.value(target.get("DeadLetterConfig", {}).get("Arn"))
            if not dlq:
                continue
            statements = [("queue policy", s) for p in policies for s in listify(p["PolicyDocument"]["Statement"])
                          if any(glob(s.get("Resource", "*"), dlq) for _ in [0]) and "events.amazonaws.com" in listify(s.get("Principal", {}).get("Service", []))]
            verdict = allowed(statements, "sqs:SendMessage", dlq, {"aws:SourceArn": stack.getatt(name, "Arn"), "aws:SourceAccount": ACCOUNT})
            if verdict:
                report.fail(f"rule {name}: its dead-letter queue {dlq} does not let events.amazonaws.com send from the rule ({verdict} by the queue policies)")


def documented_defaults():
    text = (ROOT / "docs" / "configuration.md").read_text()
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", text))


def check_environment(stacks, recorded, report):
    reads, required = {}, {}
    for session in recorded:
        for function, data in session.get("functions", {}).items():
            reads.setdefault(function, set()).update(data.get("reads", []))
            required.setdefault(function, set()).update(data.get("required", []))
    documented = documented_defaults()
    for key, stack in stacks.items():
        for function, logical in stack.functions().items():
            if function not in reads:
                continue
            env = stack.environment(logical)
            own = set(stack.resources[logical]["Properties"].get("Environment", {}).get("Variables", {})) - stack.globals_env
            for name in sorted(env):
                if name in reads[function]:
                    continue
                if name in stack.globals_env and name not in own:
                    report.note(f"{function}: Globals give it {name}, which it does not read")
                else:
                    report.fail(f"{function}: the template sets {name}, which {function} never reads", key)
            for name in sorted(reads[function] - set(env)):
                if PROVIDED.match(name):
                    continue
                if name in required[function]:
                    report.fail(f"{function}: reads {name}, which it requires, and the template does not set it", key)
                elif name not in documented:
                    report.fail(f"{function}: reads {name}, which the template does not set and docs/configuration.md does not document")


def check_triggers(stack, recorded, report):
    from moto.events.models import EventPattern

    rule = stack.resources["MediaConvertEventsRule"]["Properties"]
    pattern = EventPattern.load(json.dumps(stack.value(rule["EventPattern"])))
    events = [e for s in recorded for e in s.get("events", [])]
    if not events:
        report.fail("no simulated MediaConvert events were recorded for a job create-job created")
    for event in events:
        if not pattern.matches_event(event):
            report.fail(f"ingest rule: the pattern does not match the {event['detail'].get('status')} event of job {event['detail'].get('jobId')} created by create-job")
    for fixture in sorted((ROOT / "tests" / "fixtures" / "eventbridge").glob("*.json")):
        event = json.loads(fixture.read_text())
        ours = (event.get("detail") or {}).get("userMetadata", {}).get("notifier") == stack.params["JobMarker"] and event.get("detail-type") == "MediaConvert Job State Change"
        if pattern.matches_event(event) != ours:
            report.fail(f"ingest rule: {'misses' if ours else 'matches'} tests/fixtures/eventbridge/{fixture.name}")

    records = [r for s in recorded for r in s.get("stream_records", [])]
    if not records:
        report.fail("no status-table stream records were recorded")
    mappings = {n: r["Properties"] for n, r in stack.resources.items() if r["Type"] == "AWS::Lambda::EventSourceMapping"}
    for mapping_name, mapping in mappings.items():
        function = next((b for b, logical in stack.functions().items() if stack.ref(logical) == stack.value(mapping["FunctionName"])), mapping_name)
        filters = [EventPattern.load(f["Pattern"]) for f in mapping.get("FilterCriteria", {}).get("Filters", [])]
        for record in records:
            ttl = (record.get("userIdentity") or {}).get("principalId") == "dynamodb.amazonaws.com"
            must = record["eventName"] in ("INSERT", "MODIFY")
            kind = f"{'TTL ' if ttl else ''}{record['eventName']}"
            if function == "event-publisher" and record["eventName"] == "MODIFY":
                # event-publisher must see every status transition; progress alone it need not.
                status = lambda image: (record["dynamodb"].get(image) or {}).get("JobStatus", {}).get("S")
                must = status("OldImage") != status("NewImage")
                kind = f"MODIFY {status('OldImage')} -> {status('NewImage')}"
                passes = any(f.matches_event(record) for f in filters)
                if must and not passes:
                    report.fail(f"{mapping_name}: FilterCriteria drops a {kind} record {function} must see")
                continue
            passes = not filters or any(f.matches_event(record) for f in filters)
            if passes != must:
                report.fail(f"{mapping_name}: FilterCriteria {'drops' if must else 'passes'} a {kind} record {function} {'must' if must else 'must not'} see")

    # The webhook rule must match every Job Status Changed event event-publisher put (as the bus
    # delivered it), and only those.
    job_events = [e for s in recorded for e in s.get("job_events", [])]
    webhook = stack.resources.get("WebhookRule")
    if "EventPublisherFunction" in stack.resources and not job_events:
        report.fail("no Job Status Changed events were recorded (event-publisher's binary must run)")
    if webhook:
        pattern = EventPattern.load(json.dumps(stack.value(webhook["Properties"]["EventPattern"])))
        for event in job_events:
            if not pattern.matches_event(event):
                report.fail(f"WebhookRule: the pattern misses the {event['detail'].get('job_status')} event of job {event['detail'].get('job_id')} event-publisher put")
        for fixture in sorted((ROOT / "tests" / "fixtures" / "eventbridge").glob("*.json")):
            if pattern.matches_event(json.loads(fixture.read_text())):
                report.fail(f"WebhookRule: matches tests/fixtures/eventbridge/{fixture.name}, a MediaConvert event")

    bucket = next(r["Properties"] for n, r in stack.resources.items() if r["Type"] == "AWS::S3::Bucket")
    configs = bucket.get("NotificationConfiguration", {}).get("LambdaConfigurations", [])

    def notified(key):
        for config in configs:
            rules = {x["Name"].lower(): stack.value(x["Value"]) for x in config.get("Filter", {}).get("S3Key", {}).get("Rules", [])}
            if key.startswith(rules.get("prefix", "")) and key.endswith(rules.get("suffix", "")):
                return True
        return False

    uploads = [translate(k, s, stack) for s in recorded for k in s.get("upload_keys", [])]
    outputs = [translate(k, s, stack) for s in recorded for k in s.get("output_keys", [])]
    if not uploads or not outputs:
        report.fail("no upload keys or output keys were recorded")
    for key in uploads:
        if not notified(key):
            report.fail(f"S3 notification: the filter misses {key!r}, a key upload-api issues (create-job would never run)")
    for key in outputs:
        if notified(key):
            report.fail(f"S3 notification: the filter matches {key!r}, an output key (create-job would transcode its own outputs)")

    import yaml
    asyncapi = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
    actions = {s["properties"]["action"]["const"] for s in asyncapi["components"]["schemas"].values()
               if isinstance(s, dict) and "const" in s.get("properties", {}).get("action", {})}
    routes = {stack.value(r["Properties"]["RouteKey"]) for r in stack.resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"}
    expected = actions | {"$connect", "$disconnect", "$default"}
    for key in sorted(expected - routes):
        report.fail(f"WebSocket API: no route for {key!r} ({'AsyncAPI action' if key in actions else 'API Gateway route'})")
    for key in sorted(routes - expected):
        report.fail(f"WebSocket API: route {key!r} is not an AsyncAPI action")

    openapi = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    documented = {(m.upper(), p) for p, ms in openapi["paths"].items() for m in ms if m in ("get", "post", "put", "delete", "patch")}
    documented |= {("OPTIONS", p) for p in openapi["paths"]}
    http = next(r["Properties"]["Body"] for r in stack.resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api" and "Body" in r["Properties"])
    served = {(m.upper(), p) for p, ms in http["paths"].items() for m in ms}
    for method, path in sorted(documented - served):
        report.fail(f"HTTP API: docs/openapi.yaml has {method} {path}, the template has no such route")
    for method, path in sorted(served - documented):
        report.fail(f"HTTP API: route {method} {path} is not in docs/openapi.yaml")

    for name, r in stack.resources.items():
        expression = r.get("Properties", {}).get("ScheduleExpression")
        if expression and not schedule_parses(stack.value(expression)):
            report.fail(f"{name}: schedule expression {stack.value(expression)!r} does not parse")


def schedule_parses(expression):
    """EventBridge's rate() and cron() syntax (a unit of 1 is singular, more is plural)."""
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        return value >= 1 and (value == 1) == (not unit.endswith("s"))
    cron = re.fullmatch(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)", expression)
    if not cron:
        return False
    minutes, hours, dom, month, dow, year = cron.groups()
    field = r"(\*|\d+(-\d+)?(/\d+)?)(,\d+(-\d+)?)*"
    return all(re.fullmatch(field, f) for f in (minutes, hours, year)) and (dom == "?") != (dow == "?")


# ------------------------------------------------------------------ commands
def run_check(path, quiet=False):
    template = load(path)
    recorded = sessions()
    allow_list = json.loads(ALLOW_LIST.read_text())["grants"]
    stacks = {}
    for key, params in combos():
        stacks[tuple(key.values())] = expand(template, params)
    report, summary = Report(), {}
    check_roles(stacks, recorded, allow_list, report, summary)
    for entry in allow_list:
        if not entry.get("kept"):
            report.fail(f"{ALLOW_LIST.relative_to(ROOT)}: {entry['function']} {entry['action']} on {entry['resource']} keeps no surplus grant any more; remove the entry")
    base = stacks[tuple(0 for _ in TOGGLES)]
    for key, stack in stacks.items():
        check_resource_policies(stack, report)
    check_environment(stacks, recorded, report)
    check_triggers(base, recorded, report)
    webhook_on = tuple(1 if t == "webhook" else 0 for t in TOGGLES)
    check_triggers(stacks[webhook_on], recorded, report)
    if not quiet:
        print(f"rehearsal of {path} against {len(recorded)} recorded session(s), {len(stacks)} combinations of {', '.join(TOGGLES)}:")
        for function, c in sorted(summary.items()):
            print(f"  {function:16} calls recorded {len(c['recorded']):3}  allowed in every combination {len(c['recorded'] - c['denied']):3}  surplus grants {len(c['surplus'])}")
            for line in sorted(c["surplus"]):
                print(f"      surplus (allow-listed): {line}")
        print("  not checked: redrive and replay (terminal tools with the operator's credentials, no role of their own)")
        for line in report.notes:
            print(f"  note: {line}")
        for line in report.problems:
            print(line)
    return report.problems


def extremes_command():
    """Every function's environment with each parameter at its default's neighbours that the
    template allows: MinValue, MaxValue (2^53-1 when unbounded), every AllowedValue."""
    template = load(TEMPLATE)
    cases = []
    for name, p in template["Parameters"].items():
        values = list(p.get("AllowedValues", []))
        if p.get("Type") == "Number" and not values:
            values = [p.get("MinValue", 0), p.get("MaxValue", 2**53 - 1)]
        for value in values:
            stack = expand(template, {name: str(value)})
            cases.append({"parameter": name, "value": str(value),
                          "functions": {f: stack.environment(l) for f, l in stack.functions().items()}})
    print(json.dumps(cases))


def env_command(params, binds):
    template = load(TEMPLATE)
    stack = expand(template, params)
    stack.binds.update(binds)
    out = {}
    for function, logical in stack.functions().items():
        out[function] = {"environment": stack.environment(logical)}
    print(json.dumps({"functions": out, "refs": {n: stack.ref(n) for n in stack.resources}}, indent=1))


MUTATIONS = [
    ("a role loses an action its function uses", "Action: [dynamodb:Query, dynamodb:GetItem, dynamodb:PutItem, dynamodb:DeleteItem, dynamodb:BatchWriteItem]", "Action: [dynamodb:Query, dynamodb:PutItem, dynamodb:DeleteItem, dynamodb:BatchWriteItem]", "ws-message: dynamodb:GetItem"),
    ("a resource narrowed (the index dropped)", "table/${SubscriptionsTableName}/index/InputFileIndex'", "table/${SubscriptionsTableName}'", "progress-push: dynamodb:Query on arn:aws:dynamodb:us-east-1:123456789012:table/MediaConvertPushSubscriptions/index/InputFileIndex"),
    ("a variable renamed", "PUSH_RATE_LIMIT: !Ref PushRateLimit", "PUSH_RATE_CAP: !Ref PushRateLimit", "PUSH_RATE_CAP"),
    ("the ingest rule's source changed", "source: [aws.mediaconvert]", "source: [aws.elementalmediaconvert]", "ingest rule"),
    ("the S3 filter prefix changed", "- {Name: prefix, Value: !Ref UploadPrefix}", "- {Name: prefix, Value: !Ref OutputPrefix}", "S3 notification"),
    ("a WebSocket route dropped", "      RouteKey: ping\n", "      RouteKey: pong\n", "'ping'"),
    ("the webhook rule's detail-type changed", "detail-type: [Job Status Changed]", "detail-type: [JobStatusChanged]", "WebhookRule: the pattern misses"),
    ("event-publisher's filter misses a transition", "\"OldImage\": {\"JobStatus\": {\"S\": [\"SUBMITTED\"]}}", "\"OldImage\": {\"JobStatus\": {\"S\": [\"PROGRESSING\"]}}", "EventsStreamMapping: FilterCriteria drops a MODIFY"),
    ("event-publisher's bus permission narrowed", ":event-bus/${EventBusName}'", ":event-bus/mcpush'", "event-publisher: events:PutEvents"),
]


def mutations_command():
    original = TEMPLATE.read_text()
    failures = 0
    for what, before, after, named in MUTATIONS:
        if before not in original:
            print(f"mutation '{what}': the template no longer contains {before!r}; update MUTATIONS")
            failures += 1
            continue
        with tempfile.TemporaryDirectory() as folder:
            copy_path = pathlib.Path(folder) / "template.yaml"
            copy_path.write_text(original.replace(before, after, 1))
            problems = run_check(copy_path, quiet=True)
        hit = [p for p in problems if named in p]
        print(f"mutation '{what}': {'caught' if hit else 'MISSED'}: {hit[0] if hit else problems[:3]}")
        failures += not hit
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    env = sub.add_parser("env")
    env.add_argument("--param", action="append", default=[])
    env.add_argument("--bind", action="append", default=[])
    check = sub.add_parser("check")
    check.add_argument("template", nargs="?", default=str(TEMPLATE))
    sub.add_parser("mutations")
    sub.add_parser("extremes")
    args = parser.parse_args()
    if args.command == "env":
        env_command(dict(p.split("=", 1) for p in args.param), dict(b.split("=", 1) for b in args.bind))
    elif args.command == "extremes":
        extremes_command()
    elif args.command == "check":
        sys.exit(1 if run_check(args.template) else 0)
    else:
        sys.exit(1 if mutations_command() else 0)


if __name__ == "__main__":
    main()
