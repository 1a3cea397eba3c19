package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wardenhq/warden/shared/approval"
)

// Approvals returns the approval store, which is db itself: each change is
// one write transaction (the callback runs inside it), so changes to an
// approval, or to a key's latest, come one at a time.
func (db *DB) Approvals() approval.Store { return approvals{db} }

type approvals struct{ db *DB }

var _ approval.Store = approvals{}

// Latest implements approval.Store.
func (s approvals) Latest(ctx context.Context, key string, fn func(*approval.Approval) (*approval.Approval, error)) error {
	return s.db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var cur *approval.Approval
		a, err := scanApproval(tx.QueryRowContext(ctx, `SELECT data FROM approvals WHERE key = ? ORDER BY rowid DESC LIMIT 1`, key))
		switch {
		case err == nil:
			cur = &a
		case !errors.Is(err, approval.ErrNotFound):
			return err
		}
		n, err := fn(cur)
		if err != nil {
			return err
		}
		if cur != nil {
			if err := writeApproval(ctx, tx, *cur, false); err != nil {
				return err
			}
		}
		if n != nil {
			return writeApproval(ctx, tx, *n, true)
		}
		return nil
	})
}

// Update implements approval.Store: an approval fn leaves as it was is
// not written.
func (s approvals) Update(ctx context.Context, id string, fn func(*approval.Approval) error) (approval.Approval, error) {
	var a approval.Approval
	err := s.db.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var stored string
		var err error
		if a, stored, err = scanApprovalData(tx.QueryRowContext(ctx, `SELECT data FROM approvals WHERE id = ?`, id)); err != nil {
			return err
		}
		if err := fn(&a); err != nil {
			return err
		}
		if data, err := json.Marshal(a); err == nil && string(data) == stored {
			return nil
		}
		return writeApproval(ctx, tx, a, false)
	})
	return a, err
}

// Get implements approval.Store.
func (s approvals) Get(ctx context.Context, id string) (approval.Approval, error) {
	return scanApproval(s.db.r.QueryRowContext(ctx, `SELECT data FROM approvals WHERE id = ?`, id))
}

// List implements approval.Store.
func (s approvals) List(ctx context.Context, f approval.Filter) ([]approval.Approval, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = approval.DefaultListLimit
	}
	q, args := `SELECT data FROM approvals ORDER BY created DESC, rowid DESC LIMIT ?`, []any{limit}
	if f.State != "" {
		q, args = `SELECT data FROM approvals WHERE state = ? ORDER BY created DESC, rowid DESC LIMIT ?`, []any{string(f.State), limit}
	}
	return s.query(ctx, q, args...)
}

// Due implements approval.Store.
func (s approvals) Due(ctx context.Context, t time.Time) ([]approval.Approval, error) {
	at, err := formatTime(t)
	if err != nil {
		return nil, err
	}
	return s.query(ctx, `SELECT data FROM approvals WHERE state = 'pending' AND expires <= ?`, at)
}

func (s approvals) query(ctx context.Context, q string, args ...any) ([]approval.Approval, error) {
	rows, err := s.db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	defer rows.Close()
	var out []approval.Approval
	for rows.Next() {
		a, err := scanApproval(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

func scanApproval(row scanner) (approval.Approval, error) {
	a, _, err := scanApprovalData(row)
	return a, err
}

// scanApprovalData reads an approval and its stored JSON.
func scanApprovalData(row scanner) (approval.Approval, string, error) {
	var data string
	err := row.Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return approval.Approval{}, "", approval.ErrNotFound
	}
	if err != nil {
		return approval.Approval{}, "", fmt.Errorf("read approval: %w", err)
	}
	var a approval.Approval
	if err := json.Unmarshal([]byte(data), &a); err != nil {
		return approval.Approval{}, "", fmt.Errorf("stored approval: %w", err)
	}
	return a, data, nil
}

// writeApproval inserts a new approval, or writes one back.
func writeApproval(ctx context.Context, tx *sql.Tx, a approval.Approval, insert bool) error {
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("approval %s: %w", a.ID, err)
	}
	created, err := formatTime(a.Created)
	if err != nil {
		return fmt.Errorf("approval %s: %w", a.ID, err)
	}
	expires, err := formatTime(a.Expires)
	if err != nil {
		return fmt.Errorf("approval %s: %w", a.ID, err)
	}
	if insert {
		_, err = tx.ExecContext(ctx, `INSERT INTO approvals (id, key, state, created, expires, data) VALUES (?, ?, ?, ?, ?, ?)`,
			a.ID, a.Key, string(a.State), created, expires, string(data))
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE approvals SET state = ?, expires = ?, data = ? WHERE id = ?`,
			string(a.State), expires, string(data), a.ID)
	}
	if err != nil {
		return fmt.Errorf("write approval %s: %w", a.ID, err)
	}
	return nil
}
