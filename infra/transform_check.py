"""Expands template.yaml as CloudFormation would (AWS::LanguageExtensions, then the SAM
transform, both as the SAM CLI ships them) with sign-in off and on, and checks that the OIDC
parameters switch exactly what they should: the HTTP API's JWT authorizer on POST /media/uploads
only, the WebSocket $connect authorizer, and upload-api's OIDC variables."""
import logging
import os
import sys

from samcli.lib.cfn_language_extensions.api import process_template
from samcli.lib.cfn_language_extensions.models import PseudoParameterValues
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# The SAM translator warns of its own unpublished usage metrics when it is garbage-collected.
logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
TEMPLATE = yaml_parse(open(os.path.join(os.path.dirname(__file__), "template.yaml")).read())


class NoManagedPolicies:
    def load(self):
        return {}


def expand(**overrides):
    values = {name: p.get("Default") for name, p in TEMPLATE["Parameters"].items()}
    values.update(overrides)
    pseudo = PseudoParameterValues(region="us-east-1", account_id="123456789012")
    template = process_template(TEMPLATE, parameter_values=values, pseudo_parameters=pseudo)
    template["Transform"] = "AWS::Serverless-2016-10-31"
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/code.zip"
    return transform(template, values, NoManagedPolicies())["Resources"]


def check(condition, message):
    if not condition:
        sys.exit(f"infra/transform_check.py: {message}")


off = expand()
paths = off["HttpApi"]["Properties"]["Body"]["paths"]
UPLOAD_STEPS = ["/media/uploads", "/media/uploads/parts", "/media/uploads/complete", "/media/uploads/abort"]
check(all("security" not in paths[p]["post"] for p in UPLOAD_STEPS), "without OIDC, POST /media/uploads* must have no authorizer")
check("securitySchemes" not in off["HttpApi"]["Properties"]["Body"].get("components", {}), "without OIDC, the HTTP API must define no authorizer")
check(off["ConnectRoute"]["Properties"]["AuthorizationType"] == "NONE", "without OIDC, $connect must be open")
check("OIDC_ISSUER" not in off["UploadApiFunction"]["Properties"]["Environment"]["Variables"], "without OIDC, upload-api must not ask for sign-in")
check(all(off[name].get("Condition") == "OidcEnabled" for name in ["WsAuthorizer", "WsAuthorizerFunction", "WsAuthorizerPermission"]), "the $connect authorizer must exist only with OIDC")

issuer, audience = "https://issuer.example.com/pool", "web-client"
on = expand(OidcIssuer=issuer, OidcAudience=audience)
body = on["HttpApi"]["Properties"]["Body"]
check(all(body["paths"][p]["post"].get("security") == [{"OidcAuthorizer": []}] for p in UPLOAD_STEPS), "with OIDC, POST /media/uploads and its multipart steps must use the JWT authorizer")
scheme = body["components"]["securitySchemes"]["OidcAuthorizer"]["x-amazon-apigateway-authorizer"]
check(scheme["type"] == "jwt" and scheme["jwtConfiguration"] == {"issuer": issuer, "audience": [audience]}, f"JWT authorizer misconfigured: {scheme}")
check(scheme["identitySource"] == "$request.header.Authorization", "the JWT must come in the Authorization header")
for path, methods in body["paths"].items():
    for method, operation in methods.items():
        if not (path in UPLOAD_STEPS and method == "post"):
            check("security" not in operation, f"{method.upper()} {path} must not need sign-in (read tokens guard it)")
check(on["ConnectRoute"]["Properties"]["AuthorizationType"] == "CUSTOM" and on["ConnectRoute"]["Properties"]["AuthorizerId"] == {"Ref": "WsAuthorizer"}, "with OIDC, $connect must run ws-authorizer")
check("IdentitySource" not in on["WsAuthorizer"]["Properties"], "the $connect authorizer must run without access_token too (anonymous connections)")
variables = on["UploadApiFunction"]["Properties"]["Environment"]["Variables"]
check((variables.get("OIDC_ISSUER"), variables.get("OIDC_AUDIENCE")) == (issuer, audience), "with OIDC, upload-api must know sign-in is on")

# The dashboard's body is JSON once Fn::Sub has filled it in.
import json
import re

body = off["Dashboard"]["Properties"]["DashboardBody"]
body = body["Fn::Sub"] if isinstance(body, dict) else body
try:
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
except (ValueError, KeyError) as e:
    sys.exit(f"infra/transform_check.py: the dashboard body is not valid JSON: {e}")
check(len(widgets) >= 8 and all(w["properties"]["metrics"] for w in widgets), "every dashboard widget must show metrics")
alarms = [name for name, r in off.items() if r["Type"] == "AWS::CloudWatch::Alarm"]
check(len(alarms) == 22, f"expected 22 alarms (6 queues, iterator age, push failures, events failed, lag, parked reconciles, 11 functions), found {len(alarms)}")

# Events for backends: on by default (the default bus), off with EventBusName empty; the webhook
# only with WebhookUrl.
events = ["EventPublisherFunction", "EventPublisherRole", "EventsStreamMapping", "EventsFailureQueue", "EventsFailureQueueAlarm"]
check(all(off[name].get("Condition") == "EventsEnabled" for name in events), "event-publisher and its mapping must exist only with EventBusName")
webhook = ["WebhookConnection", "WebhookDestination", "WebhookRole", "WebhookRule", "WebhookDeadLetterQueue", "WebhookDeadLetterQueuePolicy", "WebhookDeadLetterQueueAlarm"]
check(all(off[name].get("Condition") == "WebhookEnabled" for name in webhook), "the webhook's resources must exist only with WebhookUrl")
target = off["WebhookRule"]["Properties"]["Targets"][0]
check(target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400} and "DeadLetterConfig" in target, f"the webhook must be retried 24 h / 185 times, then dead-lettered: {target}")
mapping = off["EventsStreamMapping"]["Properties"]
check(mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and "OnFailure" in mapping["DestinationConfig"], "event-publisher's mapping must honour batchItemFailures and keep failures")
print("infra/transform_check.py: sign-in off and on expand as intended; dashboard JSON, alarms, events and webhook in place")
