package lambdas

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/awssecrets"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/s3store"
	"github.com/wardenhq/warden/shared/secret"
	"github.com/wardenhq/warden/shared/stepfn"
)

// Env is a function's environment: its configuration (set by the stack)
// and its AWS configuration (the function's role).
type Env struct {
	Config awsconfig.Config
	AWS    aws.Config
	Log    *slog.Logger
	// lookup reads the environment (os.LookupEnv).
	lookup func(string) (string, bool)
}

// LoadEnv reads the environment, naming every missing variable. The AWS
// configuration is what Lambda puts in every function's environment: the
// region (AWS_REGION) and the role's credentials (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), and the SDK's endpoint
// variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>) are honoured.
// Not the SDK's full loader: its shared files, SSO and instance-role
// providers are of no use in Lambda and are 2 MB of each binary.
func LoadEnv(ctx context.Context, required ...string) (Env, error) {
	return loadEnv(os.LookupEnv, required...)
}

func loadEnv(lookup func(string) (string, bool), required ...string) (Env, error) {
	cfg := awsconfig.FromEnv(lookup)
	if err := cfg.Require(required...); err != nil {
		return Env{}, err
	}
	get := func(name string) string { v, _ := lookup(name); return strings.TrimSpace(v) }
	region := cmp.Or(get("AWS_REGION"), get("AWS_DEFAULT_REGION"))
	key, secret := get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")
	switch {
	case region == "":
		return Env{}, errors.New("no AWS region: AWS_REGION is not set (Lambda sets it)")
	case key == "" || secret == "":
		return Env{}, errors.New("no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them to the function role's)")
	}
	awsCfg := aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider(key, secret, get("AWS_SESSION_TOKEN"))}
	return Env{Config: cfg, AWS: awsCfg, Log: slog.New(slog.NewJSONHandler(os.Stderr, nil)), lookup: lookup}, nil
}

// Endpoint is the endpoint the SDK's variables give for a service
// (AWS_ENDPOINT_URL_DYNAMODB...), or "" for AWS's own.
func (e Env) Endpoint(service string) string {
	for _, name := range []string{"AWS_ENDPOINT_URL_" + service, "AWS_ENDPOINT_URL"} {
		if v, ok := e.lookup(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// DynamoDB is the DynamoDB client.
func (e Env) DynamoDB() *dynamodb.Client {
	return dynamodb.NewFromConfig(e.AWS, func(o *dynamodb.Options) {
		if u := e.Endpoint("DYNAMODB"); u != "" {
			o.BaseEndpoint = aws.String(u)
		}
	})
}

// Secrets returns the deployment's secrets in Secrets Manager.
func (e Env) Secrets() (*awssecrets.Secrets, error) {
	// One signed call rather than the SDK's client: see awssecrets.Caller.
	client := &awssecrets.Caller{Region: e.AWS.Region, Credentials: e.AWS.Credentials, Endpoint: e.Endpoint("SECRETS_MANAGER")}
	return awssecrets.New(client, e.Config.SecretsPrefix, 0)
}

// StepFunctions is the deployment's Step Functions (signed calls, no SDK
// client: see stepfn).
func (e Env) StepFunctions() *stepfn.Client {
	return &stepfn.Client{Region: e.AWS.Region, Credentials: e.AWS.Credentials, Endpoint: e.Endpoint("SFN")}
}

// Tables are the deployment's DynamoDB tables.
func (e Env) Tables() dynamo.Tables {
	return dynamo.Tables{Identity: e.Config.IdentityTable, Audit: e.Config.AuditTable, Budget: e.Config.BudgetTable, Outbox: e.Config.OutboxTable}
}

// NewArchiver returns the archiver function's handler: the audit table, the
// Object Lock bucket (checked at start), the signing key.
func NewArchiver(ctx context.Context, e Env, holder string) (*Archiver, error) {
	secrets, err := e.Secrets()
	if err != nil {
		return nil, err
	}
	signer, err := SigningKey(ctx, secrets)
	if err != nil {
		return nil, err
	}
	s3c := s3.NewFromConfig(e.AWS, func(o *s3.Options) {
		if u := e.Endpoint("S3"); u != "" {
			o.BaseEndpoint = aws.String(u)
		}
	})
	retention, err := s3store.BucketRetention(ctx, s3c, e.Config.ArchiveBucket)
	if err != nil {
		return nil, err
	}
	store, err := s3store.NewArchive(s3c, e.Config.ArchiveBucket, retention)
	if err != nil {
		return nil, err
	}
	trail := dynamo.New(e.DynamoDB(), e.Tables()).Audit()
	return &Archiver{Trail: trail, Digester: &audit.Digester{Trail: trail, Store: trail, Key: signer},
		Archive: &audit.Archiver{Trail: trail, Store: store, Key: signer}, Holder: holder, Log: e.Log}, nil
}

// AuditKeys derives the trail's redaction key and digest signing key from
// the signing secret, one key per purpose.
func AuditKeys(ctx context.Context, secrets secret.Source) ([]byte, ed25519.PrivateKey, error) {
	s, err := secrets.Get(ctx, awsconfig.SigningKeySecret)
	if err != nil {
		return nil, nil, fmt.Errorf("read the audit signing secret %s: %w", awsconfig.SigningKeySecret, err)
	}
	if len(s) < 32 {
		return nil, nil, fmt.Errorf("the audit signing secret %s is shorter than 32 characters", awsconfig.SigningKeySecret)
	}
	derive := func(purpose string) []byte {
		m := hmac.New(sha256.New, []byte(s))
		m.Write([]byte(purpose))
		return m.Sum(nil)
	}
	return derive("warden audit redaction"), ed25519.NewKeyFromSeed(derive("warden audit signing")), nil
}

// SigningKey is AuditKeys' signing key.
func SigningKey(ctx context.Context, secrets secret.Source) (ed25519.PrivateKey, error) {
	_, k, err := AuditKeys(ctx, secrets)
	return k, err
}
