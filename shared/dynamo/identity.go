package dynamo

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wardenhq/warden/shared/awsconfig"
	"github.com/wardenhq/warden/shared/identity"
)

// The identity.Store methods follow identity.MemoryStore: a missing record
// is identity.ErrNotFound and a duplicate one identity.ErrExists, both
// unwrapped; an Update callback's error aborts the change and is returned
// as is, and a callback cannot change a record's key. A callback may run
// more than once (when another writer came first), so it must only change
// the record it is given.

var (
	_ identity.Store          = (*DB)(nil)
	_ identity.StandingReader = (*DB)(nil)
)

// Identity returns the identity store, which is db itself.
func (db *DB) Identity() identity.Store { return db }

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

func projectItem(p identity.Project) *item {
	it := &item{m: key(projectPK, p.Name)}
	it.setS("name", p.Name)
	it.setTime("created_at", p.CreatedAt)
	it.setBool("frozen", p.Frozen)
	it.setS("frozen_reason", p.FrozenReason)
	it.setS("frozen_by", p.FrozenBy)
	it.setB("enroll_hash", p.EnrollHash)
	return it
}

func readProject(it *item) identity.Project {
	return identity.Project{
		Name:         it.s("name"),
		CreatedAt:    it.time("created_at"),
		Frozen:       it.bool("frozen"),
		FrozenReason: it.s("frozen_reason"),
		FrozenBy:     it.s("frozen_by"),
		EnrollHash:   it.b("enroll_hash"),
	}
}

func agentItem(a identity.Agent) *item {
	it := &item{m: key(agentPK(a.Project), a.Name)}
	it.setS("project", a.Project)
	it.setS("name", a.Name)
	it.setTime("created_at", a.CreatedAt)
	it.setBool("killed", a.Killed)
	it.setS("kill_reason", a.KillReason)
	it.setS("killed_by", a.KilledBy)
	return it
}

func readAgent(it *item) identity.Agent {
	return identity.Agent{
		Project:    it.s("project"),
		Name:       it.s("name"),
		CreatedAt:  it.time("created_at"),
		Killed:     it.bool("killed"),
		KillReason: it.s("kill_reason"),
		KilledBy:   it.s("killed_by"),
	}
}

func sessionItem(s identity.Session) *item {
	it := &item{m: key(sessionPK(s.ID), sessionSK)}
	it.setS("id", s.ID)
	it.setS("project", s.Project)
	it.setS("agent", s.Agent)
	it.setMap("labels", s.Labels)
	it.setTime("created_at", s.CreatedAt)
	it.setTime("expires_at", s.ExpiresAt)
	it.setBool("killed", s.Killed)
	it.setS("kill_reason", s.KillReason)
	it.setS("killed_by", s.KilledBy)
	it.setBool("paused", s.Paused)
	it.setS("pause_reason", s.PauseReason)
	it.setS("paused_by", s.PausedBy)
	it.setB("token_hash", s.TokenHash)
	it.setS(awsconfig.AttrGSI1PK, sessionsGSI)
	it.setS(awsconfig.AttrGSI1SK, it.s("created_at")+"#"+s.ID)
	it.setN(awsconfig.AttrTTL, s.ExpiresAt.AddDate(0, 0, sessionRetentionDays).Unix())
	return it
}

func readSession(it *item) identity.Session {
	return identity.Session{
		ID:          it.s("id"),
		Project:     it.s("project"),
		Agent:       it.s("agent"),
		Labels:      it.stringMap("labels"),
		CreatedAt:   it.time("created_at"),
		ExpiresAt:   it.time("expires_at"),
		Killed:      it.bool("killed"),
		KillReason:  it.s("kill_reason"),
		KilledBy:    it.s("killed_by"),
		Paused:      it.bool("paused"),
		PauseReason: it.s("pause_reason"),
		PausedBy:    it.s("paused_by"),
		TokenHash:   it.b("token_hash"),
	}
}

// create puts it unless an item with its key exists.
func (db *DB) create(ctx context.Context, it *item) error {
	if it.err != nil {
		return it.err
	}
	it.setN("ver", 1)
	_, err := db.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(db.tables.Identity),
		Item:                it.m,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if conditionFailed(err) {
		return identity.ErrExists
	}
	return err
}

// get reads an item with a strongly consistent read; identity.ErrNotFound
// if there is none.
func (db *DB) get(ctx context.Context, pk, sk string) (*item, error) {
	out, err := db.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(db.tables.Identity),
		Key:            key(pk, sk),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	if out.Item == nil {
		return nil, identity.ErrNotFound
	}
	return &item{m: out.Item}, nil
}

// getAs reads and decodes one record.
func getAs[T any](ctx context.Context, db *DB, pk, sk string, read func(*item) T) (T, error) {
	var zero T
	it, err := db.get(ctx, pk, sk)
	if err != nil {
		return zero, err
	}
	v := read(it)
	if it.err != nil {
		return zero, it.err
	}
	return v, nil
}

// update is the optimistic read-modify-write of one record: read it, run
// fn, write it back if its version did not move meanwhile, else start
// over. rekey restores the record's key fields after fn.
func update[T any](ctx context.Context, db *DB, pk, sk string, read func(*item) T, write func(T) *item, rekey func(*T), fn func(*T) error) error {
	for range maxAttempts {
		it, err := db.get(ctx, pk, sk)
		if err != nil {
			return err
		}
		v := read(it)
		ver := it.n("ver")
		if it.err != nil {
			return it.err
		}
		if err := fn(&v); err != nil {
			return callbackError{err}
		}
		rekey(&v)
		next := write(v)
		if next.err != nil {
			return next.err
		}
		next.setN("ver", ver+1)
		cond := "ver = :ver"
		if ver == 0 {
			cond = "attribute_not_exists(ver)"
		}
		in := &dynamodb.PutItemInput{
			TableName:           aws.String(db.tables.Identity),
			Item:                next.m,
			ConditionExpression: aws.String(cond),
		}
		if ver != 0 {
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":ver": num(ver)}
		}
		_, err = db.client.PutItem(ctx, in)
		if conditionFailed(err) {
			continue // another writer came first: read again
		}
		return err
	}
	return ErrContended
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
func (db *DB) CreateProject(ctx context.Context, p identity.Project) error {
	return wrap(db.create(ctx, projectItem(p)), "create project %q", p.Name)
}

// GetProject implements identity.Store.
func (db *DB) GetProject(ctx context.Context, name string) (identity.Project, error) {
	p, err := getAs(ctx, db, projectPK, name, readProject)
	return p, wrap(err, "get project %q", name)
}

// ListProjects implements identity.Store: by name, in byte order.
func (db *DB) ListProjects(ctx context.Context) ([]identity.Project, error) {
	var out []identity.Project
	err := db.query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(db.tables.Identity),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(projectPK)},
		ConsistentRead:            aws.Bool(true),
	}, func(it *item) { out = append(out, readProject(it)) })
	return out, wrap(err, "list projects")
}

// UpdateProject implements identity.Store.
func (db *DB) UpdateProject(ctx context.Context, name string, fn func(*identity.Project) error) error {
	err := update(ctx, db, projectPK, name, readProject, projectItem, func(p *identity.Project) { p.Name = name }, fn)
	return wrapUpdate(err, "update project %q", name)
}

// PutAgent implements identity.Store.
func (db *DB) PutAgent(ctx context.Context, a identity.Agent) error {
	err := db.create(ctx, agentItem(a))
	if err == identity.ErrExists {
		return nil
	}
	return wrap(err, "put agent %s/%s", a.Project, a.Name)
}

// GetAgent implements identity.Store.
func (db *DB) GetAgent(ctx context.Context, project, name string) (identity.Agent, error) {
	a, err := getAs(ctx, db, agentPK(project), name, readAgent)
	return a, wrap(err, "get agent %s/%s", project, name)
}

// UpdateAgent implements identity.Store.
func (db *DB) UpdateAgent(ctx context.Context, project, name string, fn func(*identity.Agent) error) error {
	rekey := func(a *identity.Agent) { a.Project, a.Name = project, name }
	err := update(ctx, db, agentPK(project), name, readAgent, agentItem, rekey, fn)
	return wrapUpdate(err, "update agent %s/%s", project, name)
}

// GetAgentAndProject implements identity.StandingReader: one
// BatchGetItem, strongly consistent, on every authenticated request.
func (db *DB) GetAgentAndProject(ctx context.Context, project, agent string) (identity.Agent, identity.Project, error) {
	var a *identity.Agent
	var p *identity.Project
	keys := []map[string]types.AttributeValue{key(agentPK(project), agent), key(projectPK, project)}
	err := db.batchGet(ctx, db.tables.Identity, keys, "", func(it *item) {
		if it.s(awsconfig.AttrPK) == projectPK {
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
func (db *DB) CreateSession(ctx context.Context, s identity.Session) error {
	return wrap(db.create(ctx, sessionItem(s)), "create session %s", s.ID)
}

// GetSession implements identity.Store.
func (db *DB) GetSession(ctx context.Context, id string) (identity.Session, error) {
	s, err := getAs(ctx, db, sessionPK(id), sessionSK, readSession)
	return s, wrap(err, "get session %s", id)
}

// ListSessions implements identity.Store: oldest first, from the index,
// which DynamoDB keeps up to date within a fraction of a second.
func (db *DB) ListSessions(ctx context.Context, project string) ([]identity.Session, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(db.tables.Identity),
		IndexName:                 aws.String(awsconfig.IndexGSI1),
		KeyConditionExpression:    aws.String("gsi1pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(sessionsGSI)},
	}
	if project != "" {
		in.FilterExpression = aws.String("#project = :project")
		in.ExpressionAttributeNames = map[string]string{"#project": "project"} // a reserved word
		in.ExpressionAttributeValues[":project"] = str(project)
	}
	var out []identity.Session
	err := db.query(ctx, in, func(it *item) { out = append(out, readSession(it)) })
	return out, wrap(err, "list sessions")
}

// UpdateSession implements identity.Store.
func (db *DB) UpdateSession(ctx context.Context, id string, fn func(*identity.Session) error) error {
	err := update(ctx, db, sessionPK(id), sessionSK, readSession, sessionItem, func(s *identity.Session) { s.ID = id }, fn)
	return wrapUpdate(err, "update session %s", id)
}

// GetMeta implements identity.Store.
func (db *DB) GetMeta(ctx context.Context, name string) ([]byte, error) {
	v, err := getAs(ctx, db, metaPK, name, func(it *item) []byte { return it.b("value") })
	return slices.Clone(v), wrap(err, "get meta %q", name)
}

// PutMeta implements identity.Store.
func (db *DB) PutMeta(ctx context.Context, name string, value []byte) error {
	it := &item{m: key(metaPK, name)}
	it.setB("value", slices.Clone(value))
	_, err := db.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(db.tables.Identity), Item: it.m})
	return wrap(err, "put meta %q", name)
}

// query runs a query to its last page, decoding each item with read.
func (db *DB) query(ctx context.Context, in *dynamodb.QueryInput, read func(*item)) error {
	p := dynamodb.NewQueryPaginator(db.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, m := range page.Items {
			it := &item{m: m}
			read(it)
			if it.err != nil {
				return it.err
			}
		}
	}
	return nil
}
