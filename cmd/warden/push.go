package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/policy"
	"github.com/wardenhq/warden/shared/awsconfig"
)

func pushCommand() *cobra.Command {
	var bucket string
	cmd := &cobra.Command{
		Use:   "push FILE",
		Short: "Validate a policy and upload it as the deployment's new policy version (AWS)",
		Long: "push validates FILE as `warden policy validate` does and, if it is valid, uploads it to the\n" +
			"deployment's versioned policy bucket with your AWS credentials (s3:PutObject on the bucket).\n" +
			"The functions revalidate the policy at most " + awsconfig.PolicyMaxAge.String() + " after a request and apply the new\n" +
			"version then; one that failed validation there too would be refused and audited, the last good\n" +
			"one staying in force. The bucket is the stack's output PolicyBucketName.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if bucket == "" {
				bucket = os.Getenv("WARDEN_POLICY_BUCKET")
			}
			if bucket == "" {
				return errors.New("no bucket: pass --bucket or set $WARDEN_POLICY_BUCKET (the stack's output PolicyBucketName)")
			}
			cfg, err := config.LoadDefaultConfig(cmd.Context())
			if err != nil {
				return fmt.Errorf("load your AWS configuration: %w", err)
			}
			return pushPolicy(cmd.Context(), s3.NewFromConfig(cfg), bucket, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&bucket, "bucket", "", "the deployment's policy bucket (default $WARDEN_POLICY_BUCKET)")
	return cmd
}

// policyPutter is the S3 call push makes.
type policyPutter interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// pushPolicy uploads the policy file name to bucket if it is valid.
func pushPolicy(ctx context.Context, client policyPutter, bucket, name string, out, errOut io.Writer) error {
	data, err := readPolicyFile(name)
	if err != nil {
		return err
	}
	p, err := policy.Load(name, data)
	if err != nil {
		fmt.Fprintln(errOut, err)
		fmt.Fprintf(errOut, "%s: not pushed\n", name)
		return exitError{1}
	}
	res, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:            aws.String(bucket),
		Key:               aws.String(awsconfig.PolicyKey),
		Body:              bytes.NewReader(data),
		ContentType:       aws.String("application/yaml"),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		Metadata:          map[string]string{"warden-policy-version": p.Version},
	})
	if err != nil {
		return fmt.Errorf("upload %s to s3://%s/%s: %w", name, bucket, awsconfig.PolicyKey, err)
	}
	fmt.Fprintf(out, "%s: pushed to s3://%s/%s (object version %s; policy version %s, %d rules); the functions apply it within %s\n",
		name, bucket, awsconfig.PolicyKey, aws.ToString(res.VersionId), p.Version[:12], p.RuleCount(), awsconfig.PolicyMaxAge)
	return nil
}
