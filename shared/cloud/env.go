package cloud

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/wardenhq/warden/shared/audit"
	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/awssecrets"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/s3store"
)

// maxConfigObject bounds the gateway configuration and price table read
// from the policy bucket.
const maxConfigObject = 1 << 20

// Env is a function's environment: its configuration (set by the stack)
// and the AWS SDK's configuration (the function's role).
type Env struct {
	Config awsconfig.Config
	AWS    aws.Config
	Log    *slog.Logger
}

// LoadEnv reads the environment, naming every missing variable.
func LoadEnv(ctx context.Context, required ...string) (Env, error) {
	cfg := awsconfig.FromEnv(nil)
	if err := cfg.Require(required...); err != nil {
		return Env{}, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return Env{}, fmt.Errorf("load the AWS configuration: %w", err)
	}
	return Env{Config: cfg, AWS: awsCfg, Log: slog.New(slog.NewJSONHandler(os.Stderr, nil))}, nil
}

// Secrets returns the deployment's secrets in Secrets Manager.
func (e Env) Secrets() (*awssecrets.Secrets, error) {
	return awssecrets.New(secretsmanager.NewFromConfig(e.AWS), e.Config.SecretsPrefix, 0)
}

// Tables are the deployment's DynamoDB tables.
func (e Env) Tables() dynamo.Tables {
	return dynamo.Tables{Identity: e.Config.IdentityTable, Audit: e.Config.AuditTable, Budget: e.Config.BudgetTable}
}

// AppOptions are the api and llm functions' adapters: the tables, the
// policy bucket's objects, the secrets.
func (e Env) AppOptions(ctx context.Context, admin bool) (Options, error) {
	secrets, err := e.Secrets()
	if err != nil {
		return Options{}, err
	}
	s3c := s3.NewFromConfig(e.AWS)
	o := Options{
		DB:      dynamo.New(dynamodb.NewFromConfig(e.AWS), e.Tables()),
		Policy:  s3store.NewObjectFetcher(s3c, e.Config.PolicyBucket, awsconfig.PolicyKey),
		Secrets: secrets, Admin: admin, Log: e.Log, AWS: &e.AWS,
	}
	if o.LLMConfig, err = optionalObject(ctx, s3c, e.Config.PolicyBucket, awsconfig.LLMConfigKey); err != nil {
		return Options{}, err
	}
	if o.Prices, err = optionalObject(ctx, s3c, e.Config.PolicyBucket, awsconfig.PricesKey); err != nil {
		return Options{}, err
	}
	return o, nil
}

// optionalObject reads an object of the policy bucket; nil if there is
// none.
func optionalObject(ctx context.Context, client *s3.Client, bucket, key string) ([]byte, error) {
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
	s3c := s3.NewFromConfig(e.AWS)
	retention, err := s3store.BucketRetention(ctx, s3c, e.Config.ArchiveBucket)
	if err != nil {
		return nil, err
	}
	store, err := s3store.NewArchive(s3c, e.Config.ArchiveBucket, retention)
	if err != nil {
		return nil, err
	}
	trail := dynamo.New(dynamodb.NewFromConfig(e.AWS), e.Tables()).Audit()
	return &lambdas.Archiver{Trail: trail, Digester: &audit.Digester{Trail: trail, Store: trail, Key: signer},
		Archive: &audit.Archiver{Trail: trail, Store: store, Key: signer}, Holder: holder, Log: e.Log}, nil
}
