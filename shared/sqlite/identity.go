package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wardenhq/warden/shared/identity"
)

// The identity.Store methods follow identity.MemoryStore: a missing record
// is identity.ErrNotFound and a duplicate one identity.ErrExists, both
// unwrapped; an Update function's callback runs inside the write
// transaction (read, call, write), and its error aborts the change and is
// returned as is. Update writes every field but the key: a callback cannot
// rename or move a record. The callback holds the writer, so it must be
// quick and must not call the store.

var _ identity.Store = (*DB)(nil)

// Identity returns the identity store, which is db itself.
func (db *DB) Identity() identity.Store { return db }

// queryer is what reads need: the reader pool, or the writer connection
// inside a transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// CreateProject implements identity.Store.
func (db *DB) CreateProject(ctx context.Context, p identity.Project) error {
	created, err := formatTime(p.CreatedAt)
	if err != nil {
		return fmt.Errorf("create project %q: %w", p.Name, err)
	}
	res, err := db.w.ExecContext(ctx, `INSERT INTO projects
		(name, created_at, frozen, frozen_reason, frozen_by, enroll_hash) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`,
		p.Name, created, p.Frozen, p.FrozenReason, p.FrozenBy, p.EnrollHash)
	ok, err := inserted(res, err)
	if err != nil {
		return fmt.Errorf("create project %q: %w", p.Name, err)
	}
	if !ok {
		return identity.ErrExists
	}
	return nil
}

// GetProject implements identity.Store.
func (db *DB) GetProject(ctx context.Context, name string) (identity.Project, error) {
	p, err := getProject(ctx, db.r, name)
	if err != nil && !errors.Is(err, identity.ErrNotFound) {
		return identity.Project{}, fmt.Errorf("get project %q: %w", name, err)
	}
	return p, err
}

const projectColumns = `name, created_at, frozen, frozen_reason, frozen_by, enroll_hash`

func getProject(ctx context.Context, q queryer, name string) (identity.Project, error) {
	return scanProject(q.QueryRowContext(ctx, `SELECT `+projectColumns+` FROM projects WHERE name = ?`, name))
}

func scanProject(row interface{ Scan(...any) error }) (identity.Project, error) {
	var p identity.Project
	var created string
	err := row.Scan(&p.Name, &created, &p.Frozen, &p.FrozenReason, &p.FrozenBy, &p.EnrollHash)
	if errors.Is(err, sql.ErrNoRows) {
		return identity.Project{}, identity.ErrNotFound
	}
	if err != nil {
		return identity.Project{}, err
	}
	if p.CreatedAt, err = parseTime(created); err != nil {
		return identity.Project{}, err
	}
	return p, nil
}

// ListProjects implements identity.Store; projects come in name order.
func (db *DB) ListProjects(ctx context.Context) ([]identity.Project, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+projectColumns+` FROM projects ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	defer rows.Close()
	var out []identity.Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	return out, nil
}

// UpdateProject implements identity.Store.
func (db *DB) UpdateProject(ctx context.Context, name string, update func(*identity.Project) error) error {
	return db.inTx(ctx, func(ctx context.Context, c *sql.Tx) error {
		p, err := getProject(ctx, c, name)
		if errors.Is(err, identity.ErrNotFound) {
			return err
		}
		if err != nil {
			return fmt.Errorf("update project %q: %w", name, err)
		}
		if err := update(&p); err != nil {
			return err
		}
		created, err := formatTime(p.CreatedAt)
		if err != nil {
			return fmt.Errorf("update project %q: %w", name, err)
		}
		_, err = c.ExecContext(ctx, `UPDATE projects SET
			created_at = ?, frozen = ?, frozen_reason = ?, frozen_by = ?, enroll_hash = ? WHERE name = ?`,
			created, p.Frozen, p.FrozenReason, p.FrozenBy, p.EnrollHash, name)
		if err != nil {
			return fmt.Errorf("update project %q: %w", name, err)
		}
		return nil
	})
}

// PutAgent implements identity.Store: it creates the agent if it does not
// exist and leaves an existing one untouched.
func (db *DB) PutAgent(ctx context.Context, a identity.Agent) error {
	created, err := formatTime(a.CreatedAt)
	if err != nil {
		return fmt.Errorf("put agent %s/%s: %w", a.Project, a.Name, err)
	}
	_, err = db.w.ExecContext(ctx, `INSERT INTO agents
		(project, name, created_at, killed, kill_reason, killed_by) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`,
		a.Project, a.Name, created, a.Killed, a.KillReason, a.KilledBy)
	if err != nil {
		return fmt.Errorf("put agent %s/%s: %w", a.Project, a.Name, err)
	}
	return nil
}

// GetAgent implements identity.Store.
func (db *DB) GetAgent(ctx context.Context, project, name string) (identity.Agent, error) {
	a, err := getAgent(ctx, db.r, project, name)
	if err != nil && !errors.Is(err, identity.ErrNotFound) {
		return identity.Agent{}, fmt.Errorf("get agent %s/%s: %w", project, name, err)
	}
	return a, err
}

func getAgent(ctx context.Context, q queryer, project, name string) (identity.Agent, error) {
	var a identity.Agent
	var created string
	err := q.QueryRowContext(ctx, `SELECT project, name, created_at, killed, kill_reason, killed_by
		FROM agents WHERE project = ? AND name = ?`, project, name).
		Scan(&a.Project, &a.Name, &created, &a.Killed, &a.KillReason, &a.KilledBy)
	if errors.Is(err, sql.ErrNoRows) {
		return identity.Agent{}, identity.ErrNotFound
	}
	if err != nil {
		return identity.Agent{}, err
	}
	if a.CreatedAt, err = parseTime(created); err != nil {
		return identity.Agent{}, err
	}
	return a, nil
}

// UpdateAgent implements identity.Store.
func (db *DB) UpdateAgent(ctx context.Context, project, name string, update func(*identity.Agent) error) error {
	return db.inTx(ctx, func(ctx context.Context, c *sql.Tx) error {
		a, err := getAgent(ctx, c, project, name)
		if errors.Is(err, identity.ErrNotFound) {
			return err
		}
		if err != nil {
			return fmt.Errorf("update agent %s/%s: %w", project, name, err)
		}
		if err := update(&a); err != nil {
			return err
		}
		created, err := formatTime(a.CreatedAt)
		if err != nil {
			return fmt.Errorf("update agent %s/%s: %w", project, name, err)
		}
		_, err = c.ExecContext(ctx, `UPDATE agents SET
			created_at = ?, killed = ?, kill_reason = ?, killed_by = ? WHERE project = ? AND name = ?`,
			created, a.Killed, a.KillReason, a.KilledBy, project, name)
		if err != nil {
			return fmt.Errorf("update agent %s/%s: %w", project, name, err)
		}
		return nil
	})
}

// CreateSession implements identity.Store.
func (db *DB) CreateSession(ctx context.Context, s identity.Session) error {
	created, expires, labels, err := sessionColumns(s)
	if err != nil {
		return fmt.Errorf("create session %s: %w", s.ID, err)
	}
	res, err := db.w.ExecContext(ctx, `INSERT INTO sessions
		(id, project, agent, labels, created_at, expires_at, killed, kill_reason, killed_by, token_hash, paused, pause_reason, paused_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		s.ID, s.Project, s.Agent, labels, created, expires, s.Killed, s.KillReason, s.KilledBy, s.TokenHash, s.Paused, s.PauseReason, s.PausedBy)
	ok, err := inserted(res, err)
	if err != nil {
		return fmt.Errorf("create session %s: %w", s.ID, err)
	}
	if !ok {
		return identity.ErrExists
	}
	return nil
}

// sessionColumns encodes the fields of s that are stored differently from
// their Go form. A nil Labels map is stored as NULL, so that it reads back
// nil rather than empty.
func sessionColumns(s identity.Session) (created, expires string, labels sql.NullString, err error) {
	if created, err = formatTime(s.CreatedAt); err != nil {
		return "", "", labels, err
	}
	if expires, err = formatTime(s.ExpiresAt); err != nil {
		return "", "", labels, err
	}
	if s.Labels != nil {
		b, err := json.Marshal(s.Labels)
		if err != nil {
			return "", "", labels, fmt.Errorf("encode labels: %w", err)
		}
		labels = sql.NullString{String: string(b), Valid: true}
	}
	return created, expires, labels, nil
}

const sessionSelect = `SELECT id, project, agent, labels, created_at, expires_at, killed, kill_reason, killed_by, token_hash,
	paused, pause_reason, paused_by FROM sessions`

func scanSession(row interface{ Scan(...any) error }) (identity.Session, error) {
	var s identity.Session
	var labels sql.NullString
	var created, expires string
	err := row.Scan(&s.ID, &s.Project, &s.Agent, &labels, &created, &expires,
		&s.Killed, &s.KillReason, &s.KilledBy, &s.TokenHash, &s.Paused, &s.PauseReason, &s.PausedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return identity.Session{}, identity.ErrNotFound
	}
	if err != nil {
		return identity.Session{}, err
	}
	if labels.Valid {
		if err := json.Unmarshal([]byte(labels.String), &s.Labels); err != nil {
			return identity.Session{}, fmt.Errorf("decode labels: %w", err)
		}
	}
	if s.CreatedAt, err = parseTime(created); err != nil {
		return identity.Session{}, err
	}
	if s.ExpiresAt, err = parseTime(expires); err != nil {
		return identity.Session{}, err
	}
	return s, nil
}

// GetSession implements identity.Store.
func (db *DB) GetSession(ctx context.Context, id string) (identity.Session, error) {
	s, err := scanSession(db.r.QueryRowContext(ctx, sessionSelect+` WHERE id = ?`, id))
	if err != nil && !errors.Is(err, identity.ErrNotFound) {
		return identity.Session{}, fmt.Errorf("get session %s: %w", id, err)
	}
	return s, err
}

// ListSessions implements identity.Store: the sessions of project, or all
// when project is "", oldest first (ties in ID order).
func (db *DB) ListSessions(ctx context.Context, project string) ([]identity.Session, error) {
	rows, err := db.r.QueryContext(ctx, sessionSelect+` WHERE ? = '' OR project = ? ORDER BY created_at, id`, project, project)
	if err != nil {
		return nil, fmt.Errorf("list sessions of %q: %w", project, err)
	}
	defer rows.Close()
	var out []identity.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions of %q: %w", project, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions of %q: %w", project, err)
	}
	return out, nil
}

// UpdateSession implements identity.Store.
func (db *DB) UpdateSession(ctx context.Context, id string, update func(*identity.Session) error) error {
	return db.inTx(ctx, func(ctx context.Context, c *sql.Tx) error {
		s, err := scanSession(c.QueryRowContext(ctx, sessionSelect+` WHERE id = ?`, id))
		if errors.Is(err, identity.ErrNotFound) {
			return err
		}
		if err != nil {
			return fmt.Errorf("update session %s: %w", id, err)
		}
		if err := update(&s); err != nil {
			return err
		}
		created, expires, labels, err := sessionColumns(s)
		if err != nil {
			return fmt.Errorf("update session %s: %w", id, err)
		}
		_, err = c.ExecContext(ctx, `UPDATE sessions SET labels = ?, created_at = ?, expires_at = ?,
			killed = ?, kill_reason = ?, killed_by = ?, token_hash = ?, paused = ?, pause_reason = ?, paused_by = ? WHERE id = ?`,
			labels, created, expires, s.Killed, s.KillReason, s.KilledBy, s.TokenHash, s.Paused, s.PauseReason, s.PausedBy, id)
		if err != nil {
			return fmt.Errorf("update session %s: %w", id, err)
		}
		return nil
	})
}

// GetMeta implements identity.Store.
func (db *DB) GetMeta(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := db.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, identity.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get meta %q: %w", key, err)
	}
	return v, nil
}

// PutMeta implements identity.Store.
func (db *DB) PutMeta(ctx context.Context, key string, value []byte) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("put meta %q: %w", key, err)
	}
	return nil
}

// inserted reports whether an INSERT ... ON CONFLICT DO NOTHING, which
// returned res and err, inserted its row.
func inserted(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
