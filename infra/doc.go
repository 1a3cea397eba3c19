// Package infra will hold Warden's AWS CDK app (Go): the API Gateway and
// Lambda front end, the policy bucket, DynamoDB tables, the S3 Object Lock
// audit archive, the approval state machine and the secrets. It is its own Go
// module so that the runtime module never compiles the CDK libraries;
// cdk.json at the repository root points here.
package infra
