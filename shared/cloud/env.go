package cloud

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/awsiam"
	"github.com/wardenhq/warden/shared/awssts"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/lambdas"
	"github.com/wardenhq/warden/shared/s3policy"
	"github.com/wardenhq/warden/shared/s3store"
)

// maxConfigObject bounds the gateway configuration and price table read
// from the policy bucket.
const maxConfigObject = 1 << 20

// AppOptions are the api and llm functions' adapters: the tables, the
// policy, the optional objects of the policy bucket named by keys (those
// the function's front ends read; all read with s3store.Getter: these
// functions need no more of S3), the secrets, and for the admin API (api)
// the audit archive, read only.
func AppOptions(ctx context.Context, e lambdas.Env, admin bool, keys ...string) (Options, error) {
	secrets, err := e.Secrets()
	if err != nil {
		return Options{}, err
	}
	get := &s3store.Getter{Region: e.AWS.Region, Credentials: e.AWS.Credentials, Endpoint: e.Endpoint("S3")}
	o := Options{
		DB:      dynamo.New(e.DynamoDB(), e.Tables()),
		Policy:  s3policy.NewObjectFetcher(get, e.Config.PolicyBucket, awsconfig.PolicyKey),
		Secrets: secrets, Admin: admin, Log: e.Log, AWS: &e.AWS,
		Metrics:      &lambdas.Metrics{Stage: e.Config.Stage, Out: os.Stdout},
		StateMachine: e.Config.ApprovalsStateMachine, Tasks: e.StepFunctions(),
	}
	if admin {
		if o.Archive, err = s3store.NewArchiveReader(get, e.Config.ArchiveBucket); err != nil {
			return Options{}, err
		}
		o.STS = &awssts.Client{Region: e.AWS.Region, Credentials: e.AWS.Credentials, Endpoint: e.Endpoint("STS")}
	}
	o.RuntimeRole = e.Config.RuntimeRole
	o.IAM = &awsiam.Client{Credentials: e.AWS.Credentials, Endpoint: e.Endpoint("IAM")}
	// All at once: each is a round trip of the cold start.
	into := map[string]*[]byte{awsconfig.LLMConfigKey: &o.LLMConfig, awsconfig.PricesKey: &o.Prices, awsconfig.GitConfigKey: &o.GitConfig}
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, key := range keys {
		dst, ok := into[key]
		if !ok {
			return Options{}, fmt.Errorf("%s is not an object the functions read", key)
		}
		wg.Go(func() { *dst, errs[i] = optionalObject(ctx, get, e.Config.PolicyBucket, key) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
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

// APIFromEnv builds the api function's app from its environment. Its
// front ends read none of the bucket's optional objects.
func APIFromEnv(ctx context.Context) (*App, error) { return fromEnv(ctx, true, nil, NewAPI) }

// LLMFromEnv builds the llm function's app from its environment: the
// gateway's configuration and prices, the git remote's upstreams.
func LLMFromEnv(ctx context.Context) (*App, error) {
	return fromEnv(ctx, false, []string{awsconfig.LLMConfigKey, awsconfig.PricesKey, awsconfig.GitConfigKey}, NewLLM)
}

// fromEnv builds a function's app with newApp; admin is the api
// function's (the admin API and the archive); keys the bucket's objects
// its front ends read.
func fromEnv(ctx context.Context, admin bool, keys []string, newApp func(context.Context, Options) (*App, error)) (*App, error) {
	required := []string{awsconfig.EnvIdentityTable, awsconfig.EnvAuditTable, awsconfig.EnvBudgetTable, awsconfig.EnvOutboxTable,
		awsconfig.EnvPolicyBucket, awsconfig.EnvSecretsPrefix, awsconfig.EnvApprovalsStateMachine}
	if admin {
		required = append(required, awsconfig.EnvArchiveBucket)
	}
	required = append(required, awsconfig.EnvRuntimeRole)
	env, err := lambdas.LoadEnv(ctx, required...)
	if err != nil {
		return nil, err
	}
	opts, err := AppOptions(ctx, env, admin, keys...)
	if err != nil {
		return nil, err
	}
	return newApp(ctx, opts)
}
