// Package dynamo holds the DynamoDB storage of a deployment on AWS: the
// tables (DB, CreateTables) and the audit trail (AuditLog: appended on the
// request's path, sequenced and chained by the archiver). The identity
// store and the budget ledger are in its packages identitystore and
// ledger, so that the archiver, which needs the trail alone, does not
// link the policy engine they bring in. The local server's adapters are
// in shared/sqlite; both pass the same conformance suites.
//
// Every table has the key schema of awsconfig: a string partition key pk,
// a string sort key sk, sparse indexes (awsconfig.TableIndexes) and a
// numeric TTL attribute.
package dynamo

import (
	"context"
	"fmt"
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
	Outbox   string
}

// DB is the DynamoDB storage of one deployment. It is safe for concurrent
// use.
type DB struct {
	client *dynamodb.Client
	tables Tables
	now    func() time.Time
}

// Client is the DynamoDB client, for the packages of the other adapters.
func (db *DB) Client() *dynamodb.Client { return db.client }

// Names are the tables' names.
func (db *DB) Names() Tables { return db.tables }

// New returns the storage over client and tables.
func New(client *dynamodb.Client, tables Tables) *DB {
	return &DB{client: client, tables: tables, now: time.Now}
}

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
		{t.Outbox, awsconfig.OutboxIndexes},
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
