package cloud

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/awssecrets"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/s3policy"
	"github.com/wardenhq/warden/shared/s3store"
)

// maxConfigObject bounds the gateway configuration and price table read
// from the policy bucket.
const maxConfigObject = 1 << 20

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

// endpoint is the endpoint the SDK's variables give for a service
// (AWS_ENDPOINT_URL_DYNAMODB...), or "" for AWS's own.
func (e Env) endpoint(service string) string {
	for _, name := range []string{"AWS_ENDPOINT_URL_" + service, "AWS_ENDPOINT_URL"} {
		if v, ok := e.lookup(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// dynamoDB is the DynamoDB client.
func (e Env) dynamoDB() *dynamodb.Client {
	return dynamodb.NewFromConfig(e.AWS, func(o *dynamodb.Options) {
		if u := e.endpoint("DYNAMODB"); u != "" {
			o.BaseEndpoint = aws.String(u)
		}
	})
}

// Secrets returns the deployment's secrets in Secrets Manager.
func (e Env) Secrets() (*awssecrets.Secrets, error) {
	client := secretsmanager.NewFromConfig(e.AWS, func(o *secretsmanager.Options) {
		if u := e.endpoint("SECRETS_MANAGER"); u != "" {
			o.BaseEndpoint = aws.String(u)
		}
	})
	return awssecrets.New(client, e.Config.SecretsPrefix, 0)
}

// Tables are the deployment's DynamoDB tables.
func (e Env) Tables() dynamo.Tables {
	return dynamo.Tables{Identity: e.Config.IdentityTable, Audit: e.Config.AuditTable, Budget: e.Config.BudgetTable}
}

// AppOptions are the api and llm functions' adapters: the tables, the
// policy bucket's objects (read with s3store.Getter: these functions need
// no more of S3), the secrets.
func (e Env) AppOptions(ctx context.Context, admin bool) (Options, error) {
	secrets, err := e.Secrets()
	if err != nil {
		return Options{}, err
	}
	get := &s3store.Getter{Region: e.AWS.Region, Credentials: e.AWS.Credentials, Endpoint: e.endpoint("S3")}
	o := Options{
		DB:      dynamo.New(e.dynamoDB(), e.Tables()),
		Policy:  s3policy.NewObjectFetcher(get, e.Config.PolicyBucket, awsconfig.PolicyKey),
		Secrets: secrets, Admin: admin, Log: e.Log, AWS: &e.AWS,
	}
	// Both at once: each is a round trip of the cold start.
	var llmErr, pricesErr error
	var wg sync.WaitGroup
	wg.Go(func() { o.LLMConfig, llmErr = optionalObject(ctx, get, e.Config.PolicyBucket, awsconfig.LLMConfigKey) })
	wg.Go(func() { o.Prices, pricesErr = optionalObject(ctx, get, e.Config.PolicyBucket, awsconfig.PricesKey) })
	wg.Wait()
	if err := errors.Join(llmErr, pricesErr); err != nil {
		return Options{}, err
	}
	return o, nil
}

// optionalObject reads an object of the policy bucket; nil if there is
// none.
func optionalObject(ctx context.Context, client s3store.GetObjectAPI, bucket, key string) ([]byte, error) {
	data, err := s3store.ReadObject(ctx, client, bucket, key, maxConfigObject)
	if errors.Is(err, s3store.ErrNoObject) {
		return nil, nil
	}
	return data, err
}

// Archiver returns the archiver function's handler: the audit table, the
// Object Lock bucket (checked at start), the signing key.
func (e Env) Archiver(ctx context.Context, holder string) (*lambdas.Archiver, error) {
	secrets, err := e.Secrets()
	if err != nil {
		return nil, err
	}
	_, signer, err := auditKeys(ctx, secrets)
	if err != nil {
		return nil, err
	}
	s3c := s3.NewFromConfig(e.AWS, func(o *s3.Options) {
		if u := e.endpoint("S3"); u != "" {
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
	trail := dynamo.New(e.dynamoDB(), e.Tables()).Audit()
	return &lambdas.Archiver{Trail: trail, Digester: &audit.Digester{Trail: trail, Store: trail, Key: signer},
		Archive: &audit.Archiver{Trail: trail, Store: store, Key: signer}, Holder: holder, Log: e.Log}, nil
}

// FromEnv builds the app of the api function (admin) or the llm function
// from the function's environment.
func FromEnv(ctx context.Context, admin bool) (*App, error) {
	env, err := LoadEnv(ctx, awsconfig.EnvIdentityTable, awsconfig.EnvAuditTable, awsconfig.EnvBudgetTable,
		awsconfig.EnvPolicyBucket, awsconfig.EnvSecretsPrefix)
	if err != nil {
		return nil, err
	}
	opts, err := env.AppOptions(ctx, admin)
	if err != nil {
		return nil, err
	}
	return New(ctx, opts)
}
