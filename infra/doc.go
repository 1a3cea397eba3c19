// Command infra is Warden's AWS CDK app: one stack per stage with the API
// Gateway REST API and the Lambda functions behind it (api, the streaming
// llm gateway, slack for Slack's clicks on approvals), the audit archiver
// and the notifier, the approvals state machine (AWS Step Functions) and
// the approvals function its tasks invoke, the agent runtime role (the
// role of the AWS credentials the api function's broker issues to agents)
// with its permissions boundary, the EventBridge rule that brings the
// agents' AWS calls, as CloudTrail records them, to the ingest function,
// the DynamoDB tables (the notifications outbox among them), the versioned
// policy bucket, the Object Lock audit archive, the secrets and the
// alarms. It is its own Go module so that the runtime module never
// compiles the CDK libraries; cdk.json at the repository root runs it, and
// `make synth` runs it without the CDK CLI. README.md describes the stack
// and its configuration.
package main
