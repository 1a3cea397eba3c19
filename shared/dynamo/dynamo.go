// Package dynamo holds the DynamoDB adapters of Warden's storage ports,
// used by the Lambda functions: the identity store (projects, agents,
// sessions, server metadata), the budget ledger and the audit trail
// (audit.go: appended on the request's path, sequenced and chained by the
// archiver). The local server's
// adapters are in shared/sqlite; both pass the same conformance suites
// (shared/identity/identitytest, shared/budget/budgettest).
//
// Every table has the key schema of awsconfig: a string partition key pk,
// a string sort key sk, a sparse index gsi1 (gsi1pk, gsi1sk) and a numeric
// TTL attribute. Items:
//
//	identity table
//	  pk "project"          sk name     a project
//	  pk "agent#"+project   sk name     an agent
//	  pk "session#"+id      sk "-"      a session; gsi1pk "session", gsi1sk created#id
//	  pk "meta"             sk key      a server-wide value
//	budget table
//	  pk "counter#"+key     sk "-"      a budget counter (key: budget.CounterKey.String)
//	  pk "hold#"+id         sk "-"      an open reservation
//
// Identity records are stored whole, as JSON in attribute v, with a version
// number ver: an Update reads the record, runs the callback and writes it
// back on the condition that ver is unchanged, and starts over when another
// writer came first. Counters are numeric attributes changed by atomic
// ADDs under condition expressions (see budget.go).
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wardenhq/warden/shared/awsconfig"
)

// Tables names the tables.
type Tables struct {
	Identity string
	Audit    string
	Budget   string
}

// DB is the DynamoDB storage of one deployment. It is safe for concurrent
// use.
type DB struct {
	client *dynamodb.Client
	tables Tables
	now    func() time.Time
	holds  sync.Map // reservation ID -> openHold, for those this instance made
}

// New returns the storage over client and tables.
func New(client *dynamodb.Client, tables Tables) *DB {
	return &DB{client: client, tables: tables, now: time.Now}
}

// maxAttempts bounds how often an optimistic update starts over when other
// writers keep coming first.
const maxAttempts = 20

// ErrContended is returned when an update lost to other writers
// maxAttempts times in a row.
var ErrContended = errors.New("dynamodb: too many concurrent writers on one item, try again")

// CreateTables creates the tables with the stack's key schema and indexes
// (awsconfig), on-demand. The stack creates them in a deployment; tests and
// local tools call this against an emulator.
func CreateTables(ctx context.Context, client *dynamodb.Client, t Tables) error {
	for _, tb := range []struct {
		name    string
		indexes []awsconfig.Index
	}{
		{t.Identity, awsconfig.IdentityIndexes},
		{t.Audit, awsconfig.AuditIndexes},
		{t.Budget, awsconfig.BudgetIndexes},
	} {
		if err := createTable(ctx, client, tb.name, tb.indexes); err != nil {
			return fmt.Errorf("create table %s: %w", tb.name, err)
		}
	}
	return nil
}

func createTable(ctx context.Context, client *dynamodb.Client, name string, indexes []awsconfig.Index) error {
	s := types.ScalarAttributeTypeS
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(awsconfig.AttrPK), AttributeType: s},
			{AttributeName: aws.String(awsconfig.AttrSK), AttributeType: s},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(awsconfig.AttrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(awsconfig.AttrSK), KeyType: types.KeyTypeRange},
		},
	}
	for _, ix := range indexes {
		in.AttributeDefinitions = append(in.AttributeDefinitions,
			types.AttributeDefinition{AttributeName: aws.String(ix.PK), AttributeType: s},
			types.AttributeDefinition{AttributeName: aws.String(ix.SK), AttributeType: s})
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName: aws.String(ix.Name),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(ix.PK), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(ix.SK), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		})
	}
	_, err := client.CreateTable(ctx, in)
	return err
}

// key is an item's primary key.
func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		awsconfig.AttrPK: &types.AttributeValueMemberS{Value: pk},
		awsconfig.AttrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

// conditionFailed reports whether err is a failed condition expression.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: fmt.Sprint(v)}
}
