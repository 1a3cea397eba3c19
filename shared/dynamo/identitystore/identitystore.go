// Package identitystore is the identity.Store on DynamoDB: projects,
// agents, sessions and server-wide values in the identity table.
//
// Items:
//
//	pk "project"          sk name     a project
//	pk "agent#"+project   sk name     an agent
//	pk "session#"+id      sk "-"      a session; gsi1pk "session", gsi1sk created#id
//	pk "meta"             sk key      a server-wide value
//
// Records are stored attribute by attribute with a version number ver: an
// Update reads the record, runs the callback and writes it back on the
// condition that ver is unchanged, and starts over when another writer
// came first.
package identitystore

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/dynamo"
	"github.com/wardenhq/warden/shared/dynamo/internal/ddb"
	"github.com/wardenhq/warden/shared/identity"
)

// The identity.Store methods follow identity.MemoryStore: a missing record
// is identity.ErrNotFound and a duplicate one identity.ErrExists, both
// unwrapped; an Update callback's error aborts the change and is returned
// as is, and a callback cannot change a record's key. A callback may run
// more than once (when another writer came first), so it must only change
// the record it is given.

// Store is the identity store. It is safe for concurrent use.
type Store struct {
	client *dynamodb.Client
	table  string
}

var (
	_ identity.Store          = (*Store)(nil)
	_ identity.StandingReader = (*Store)(nil)
)

// New returns the identity store of db's identity table.
func New(db *dynamo.DB) *Store { return &Store{client: db.Client(), table: db.Names().Identity} }

// sessionRetention is how long a session's item outlives its expiry before
// DynamoDB's TTL removes it: long enough for the admin list and for
// correlating the audit trail, which carries the session's principal
// itself.
const sessionRetentionDays = 30

const (
	projectPK = "project"
	metaPK    = "meta"
	sessionSK = "-"
	// sessionsGSI is the index partition of every session, sorted by
	// creation: the admin lists are rare, sessions are created at login.
	sessionsGSI = "session"
)

func agentPK(project string) string { return "agent#" + project }
func sessionPK(id string) string    { return "session#" + id }

func projectItem(p identity.Project) *ddb.Item {
	it := &ddb.Item{M: ddb.Key(projectPK, p.Name)}
	it.SetS("name", p.Name)
	it.SetTime("created_at", p.CreatedAt)
	it.SetBool("frozen", p.Frozen)
	it.SetS("frozen_reason", p.FrozenReason)
	it.SetS("frozen_by", p.FrozenBy)
	it.SetB("enroll_hash", p.EnrollHash)
	return it
}

func readProject(it *ddb.Item) identity.Project {
	return identity.Project{
		Name:         it.S("name"),
		CreatedAt:    it.Time("created_at"),
		Frozen:       it.Bool("frozen"),
		FrozenReason: it.S("frozen_reason"),
		FrozenBy:     it.S("frozen_by"),
		EnrollHash:   it.B("enroll_hash"),
	}
}

func agentItem(a identity.Agent) *ddb.Item {
	it := &ddb.Item{M: ddb.Key(agentPK(a.Project), a.Name)}
	it.SetS("project", a.Project)
	it.SetS("name", a.Name)
	it.SetTime("created_at", a.CreatedAt)
	it.SetBool("killed", a.Killed)
	it.SetS("kill_reason", a.KillReason)
	it.SetS("killed_by", a.KilledBy)
	return it
}

func readAgent(it *ddb.Item) identity.Agent {
	return identity.Agent{
		Project:    it.S("project"),
		Name:       it.S("name"),
		CreatedAt:  it.Time("created_at"),
		Killed:     it.Bool("killed"),
		KillReason: it.S("kill_reason"),
		KilledBy:   it.S("killed_by"),
	}
}

func sessionItem(s identity.Session) *ddb.Item {
	it := &ddb.Item{M: ddb.Key(sessionPK(s.ID), sessionSK)}
	it.SetS("id", s.ID)
	it.SetS("project", s.Project)
	it.SetS("agent", s.Agent)
	it.SetMap("labels", s.Labels)
	it.SetTime("created_at", s.CreatedAt)
	it.SetTime("expires_at", s.ExpiresAt)
	it.SetBool("killed", s.Killed)
	it.SetS("kill_reason", s.KillReason)
	it.SetS("killed_by", s.KilledBy)
	it.SetBool("paused", s.Paused)
	it.SetS("pause_reason", s.PauseReason)
	it.SetS("paused_by", s.PausedBy)
	it.SetB("token_hash", s.TokenHash)
	it.SetS(awsconfig.AttrGSI1PK, sessionsGSI)
	it.SetS(awsconfig.AttrGSI1SK, it.S("created_at")+"#"+s.ID)
	it.SetN(awsconfig.AttrTTL, s.ExpiresAt.AddDate(0, 0, sessionRetentionDays).Unix())
	return it
}

func readSession(it *ddb.Item) identity.Session {
	return identity.Session{
		ID:          it.S("id"),
		Project:     it.S("project"),
		Agent:       it.S("agent"),
		Labels:      it.StringMap("labels"),
		CreatedAt:   it.Time("created_at"),
		ExpiresAt:   it.Time("expires_at"),
		Killed:      it.Bool("killed"),
		KillReason:  it.S("kill_reason"),
		KilledBy:    it.S("killed_by"),
		Paused:      it.Bool("paused"),
		PauseReason: it.S("pause_reason"),
		PausedBy:    it.S("paused_by"),
		TokenHash:   it.B("token_hash"),
	}
}

// create puts it unless an item with its key exists.
func (s *Store) create(ctx context.Context, it *ddb.Item) error {
	if it.Err != nil {
		return it.Err
	}
	it.SetN("ver", 1)
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(s.table),
		Item:                it.M,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if ddb.ConditionFailed(err) {
		return identity.ErrExists
	}
	return err
}

// get reads an item with a strongly consistent read; identity.ErrNotFound
// if there is none.
func (s *Store) get(ctx context.Context, pk, sk string) (*ddb.Item, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            ddb.Key(pk, sk),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	if out.Item == nil {
		return nil, identity.ErrNotFound
	}
	return &ddb.Item{M: out.Item}, nil
}

// getAs reads and decodes one record.
func getAs[T any](ctx context.Context, s *Store, pk, sk string, read func(*ddb.Item) T) (T, error) {
	var zero T
	it, err := s.get(ctx, pk, sk)
	if err != nil {
		return zero, err
	}
	v := read(it)
	if it.Err != nil {
		return zero, it.Err
	}
	return v, nil
}

// update is the optimistic read-modify-write of one record: read it, run
// fn, write it back if its version did not move meanwhile, else start
// over. rekey restores the record's key fields after fn.
func update[T any](ctx context.Context, s *Store, pk, sk string, read func(*ddb.Item) T, write func(T) *ddb.Item, rekey func(*T), fn func(*T) error) error {
	for range ddb.MaxAttempts {
		it, err := s.get(ctx, pk, sk)
		if err != nil {
			return err
		}
		v := read(it)
		ver := it.N("ver")
		if it.Err != nil {
			return it.Err
		}
		if err := fn(&v); err != nil {
			return callbackError{err}
		}
		rekey(&v)
		next := write(v)
		if next.Err != nil {
			return next.Err
		}
		next.SetN("ver", ver+1)
		cond := "ver = :ver"
		if ver == 0 {
			cond = "attribute_not_exists(ver)"
		}
		in := &dynamodb.PutItemInput{
			TableName:           aws.String(s.table),
			Item:                next.M,
			ConditionExpression: aws.String(cond),
		}
		if ver != 0 {
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":ver": ddb.Num(ver)}
		}
		_, err = s.client.PutItem(ctx, in)
		if ddb.ConditionFailed(err) {
			continue // another writer came first: read again
		}
		return err
	}
	return ddb.ErrContended
}

// callbackError carries an Update callback's error out of update.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// wrap adds the operation to an unexpected error and passes the sentinels
// through as they are.
func wrap(err error, format string, args ...any) error {
	if err == nil || err == identity.ErrNotFound || err == identity.ErrExists {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// wrapUpdate is wrap for update, which also passes a callback's error
// through as it is.
func wrapUpdate(err error, format string, args ...any) error {
	if cb, ok := err.(callbackError); ok {
		return cb.err
	}
	return wrap(err, format, args...)
}

// CreateProject implements identity.Store.
func (s *Store) CreateProject(ctx context.Context, p identity.Project) error {
	return wrap(s.create(ctx, projectItem(p)), "create project %q", p.Name)
}

// GetProject implements identity.Store.
func (s *Store) GetProject(ctx context.Context, name string) (identity.Project, error) {
	p, err := getAs(ctx, s, projectPK, name, readProject)
	return p, wrap(err, "get project %q", name)
}

// ListProjects implements identity.Store: by name, in byte order.
func (s *Store) ListProjects(ctx context.Context) ([]identity.Project, error) {
	var out []identity.Project
	err := ddb.Query(ctx, s.client, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": ddb.Str(projectPK)},
		ConsistentRead:            aws.Bool(true),
	}, func(it *ddb.Item) { out = append(out, readProject(it)) })
	return out, wrap(err, "list projects")
}

// UpdateProject implements identity.Store.
func (s *Store) UpdateProject(ctx context.Context, name string, fn func(*identity.Project) error) error {
	err := update(ctx, s, projectPK, name, readProject, projectItem, func(p *identity.Project) { p.Name = name }, fn)
	return wrapUpdate(err, "update project %q", name)
}

// PutAgent implements identity.Store.
func (s *Store) PutAgent(ctx context.Context, a identity.Agent) error {
	err := s.create(ctx, agentItem(a))
	if err == identity.ErrExists {
		return nil
	}
	return wrap(err, "put agent %s/%s", a.Project, a.Name)
}

// GetAgent implements identity.Store.
func (s *Store) GetAgent(ctx context.Context, project, name string) (identity.Agent, error) {
	a, err := getAs(ctx, s, agentPK(project), name, readAgent)
	return a, wrap(err, "get agent %s/%s", project, name)
}

// UpdateAgent implements identity.Store.
func (s *Store) UpdateAgent(ctx context.Context, project, name string, fn func(*identity.Agent) error) error {
	rekey := func(a *identity.Agent) { a.Project, a.Name = project, name }
	err := update(ctx, s, agentPK(project), name, readAgent, agentItem, rekey, fn)
	return wrapUpdate(err, "update agent %s/%s", project, name)
}

// GetAgentAndProject implements identity.StandingReader: one
// BatchGetItem, strongly consistent, on every authenticated request.
func (s *Store) GetAgentAndProject(ctx context.Context, project, agent string) (identity.Agent, identity.Project, error) {
	var a *identity.Agent
	var p *identity.Project
	keys := []map[string]types.AttributeValue{ddb.Key(agentPK(project), agent), ddb.Key(projectPK, project)}
	err := ddb.BatchGet(ctx, s.client, s.table, keys, "", func(it *ddb.Item) {
		if it.S(awsconfig.AttrPK) == projectPK {
			v := readProject(it)
			p = &v
		} else {
			v := readAgent(it)
			a = &v
		}
	})
	switch {
	case err != nil:
		return identity.Agent{}, identity.Project{}, fmt.Errorf("get agent %s/%s and its project: %w", project, agent, err)
	case a == nil || p == nil:
		return identity.Agent{}, identity.Project{}, identity.ErrNotFound
	}
	return *a, *p, nil
}

// CreateSession implements identity.Store.
func (s *Store) CreateSession(ctx context.Context, sess identity.Session) error {
	return wrap(s.create(ctx, sessionItem(sess)), "create session %s", sess.ID)
}

// GetSession implements identity.Store.
func (s *Store) GetSession(ctx context.Context, id string) (identity.Session, error) {
	sess, err := getAs(ctx, s, sessionPK(id), sessionSK, readSession)
	return sess, wrap(err, "get session %s", id)
}

// ListSessions implements identity.Store: oldest first, from the index,
// which DynamoDB keeps up to date within a fraction of a second.
func (s *Store) ListSessions(ctx context.Context, project string) ([]identity.Session, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(awsconfig.IndexGSI1),
		KeyConditionExpression:    aws.String("gsi1pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": ddb.Str(sessionsGSI)},
	}
	if project != "" {
		in.FilterExpression = aws.String("#project = :project")
		in.ExpressionAttributeNames = map[string]string{"#project": "project"} // a reserved word
		in.ExpressionAttributeValues[":project"] = ddb.Str(project)
	}
	var out []identity.Session
	err := ddb.Query(ctx, s.client, in, func(it *ddb.Item) { out = append(out, readSession(it)) })
	return out, wrap(err, "list sessions")
}

// UpdateSession implements identity.Store.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(*identity.Session) error) error {
	err := update(ctx, s, sessionPK(id), sessionSK, readSession, sessionItem, func(s *identity.Session) { s.ID = id }, fn)
	return wrapUpdate(err, "update session %s", id)
}

// GetMeta implements identity.Store.
func (s *Store) GetMeta(ctx context.Context, name string) ([]byte, error) {
	v, err := getAs(ctx, s, metaPK, name, func(it *ddb.Item) []byte { return it.B("value") })
	return slices.Clone(v), wrap(err, "get meta %q", name)
}

// PutMeta implements identity.Store.
func (s *Store) PutMeta(ctx context.Context, name string, value []byte) error {
	it := &ddb.Item{M: ddb.Key(metaPK, name)}
	it.SetB("value", slices.Clone(value))
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: it.M})
	return wrap(err, "put meta %q", name)
}
