// Package sqlite implements sagehost.Store on an embedded SQLite database
// (the pure-Go modernc.org/sqlite driver, so no cgo is needed). It owns the
// schema and its migrations, which are embedded and applied once each, in
// order, inside a transaction.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/sagehost/sagehost"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migration/*.sql
var migrationFS embed.FS

// DB is a SQLite-backed sagehost.Store.
type DB struct {
	db *sql.DB
}

var _ sagehost.Store = (*DB)(nil)

// Open opens (creating if needed) the database file at path and applies
// pending migrations.
func Open(ctx context.Context, path string) (*DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// One writer at a time is what SQLite allows anyway; a small pool lets
	// readers proceed under WAL.
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s := &DB{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

func (s *DB) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY)`); err != nil {
		return fmt.Errorf("create migrations table: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migration/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := s.migrateFile(ctx, name); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

func (s *DB) migrateFile(ctx context.Context, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM migrations WHERE name = ?`, name).Scan(&n); err != nil {
		return err
	} else if n > 0 {
		return nil
	}
	buf, err := fs.ReadFile(migrationFS, name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(buf)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO migrations (name) VALUES (?)`, name); err != nil {
		return err
	}
	return tx.Commit()
}

const recordColumns = `kind, account, region, name, arn, creation_time, last_modified_time, status, doc`

type scanner interface{ Scan(dest ...any) error }

func scanRecord(row scanner) (*sagehost.Record, error) {
	var (
		r               sagehost.Record
		kind            string
		created, modded int64
		doc             []byte
	)
	if err := row.Scan(&kind, &r.Account, &r.Region, &r.Name, &r.ARN, &created, &modded, &r.Status, &doc); err != nil {
		return nil, err
	}
	r.Kind = sagehost.Kind(kind)
	r.CreationTime = time.Unix(0, created).UTC()
	r.LastModifiedTime = time.Unix(0, modded).UTC()
	r.Doc = doc
	return &r, nil
}

func nameKey(name string) string { return strings.ToLower(name) }

// Create inserts rec and its tags in one transaction.
func (s *DB) Create(ctx context.Context, rec *sagehost.Record, tags []sagehost.Tag) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create %s %s: %w", rec.Kind, rec.Name, err)
	}
	defer tx.Rollback()
	// The primary key is (kind, account, region, name_key), name_key the
	// lower-cased name: a row already there under it, in any case, is the
	// same resource.
	res, err := tx.ExecContext(ctx, `INSERT INTO resources (kind, account, region, name_key, name, arn, creation_time, last_modified_time, status, doc)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, account, region, name_key) DO NOTHING`,
		string(rec.Kind), rec.Account, rec.Region, nameKey(rec.Name), rec.Name, rec.ARN,
		rec.CreationTime.UnixNano(), rec.LastModifiedTime.UnixNano(), rec.Status, []byte(rec.Doc))
	if err != nil {
		return fmt.Errorf("create %s %s: %w", rec.Kind, rec.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("create %s %s: %w", rec.Kind, rec.Name, err)
	} else if n == 0 {
		return sagehost.ErrAlreadyExists
	}
	// A resource created under an ARN that an earlier, deleted resource of
	// the same name used starts without that resource's tags.
	if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE arn = ?`, rec.ARN); err != nil {
		return fmt.Errorf("create %s %s: clear tags: %w", rec.Kind, rec.Name, err)
	}
	if err := putTags(ctx, tx, rec.ARN, tags); err != nil {
		return fmt.Errorf("create %s %s: %w", rec.Kind, rec.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create %s %s: commit: %w", rec.Kind, rec.Name, err)
	}
	return nil
}

func getRecord(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, kind sagehost.Kind, account, region, name string) (*sagehost.Record, error) {
	row := q.QueryRowContext(ctx, `SELECT `+recordColumns+` FROM resources WHERE kind = ? AND account = ? AND region = ? AND name_key = ?`,
		string(kind), account, region, nameKey(name))
	r, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sagehost.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", kind, name, err)
	}
	return r, nil
}

// Get returns one record.
func (s *DB) Get(ctx context.Context, kind sagehost.Kind, account, region, name string) (*sagehost.Record, error) {
	return getRecord(ctx, s.db, kind, account, region, name)
}

// List returns every record of a kind in one account and region.
func (s *DB) List(ctx context.Context, kind sagehost.Kind, account, region string) ([]*sagehost.Record, error) {
	return s.query(ctx, `SELECT `+recordColumns+` FROM resources WHERE kind = ? AND account = ? AND region = ? ORDER BY name_key`,
		string(kind), account, region)
}

// ListAll returns every record of a kind.
func (s *DB) ListAll(ctx context.Context, kind sagehost.Kind) ([]*sagehost.Record, error) {
	return s.query(ctx, `SELECT `+recordColumns+` FROM resources WHERE kind = ? ORDER BY account, region, name_key`, string(kind))
}

func (s *DB) query(ctx context.Context, q string, args ...any) ([]*sagehost.Record, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	defer rows.Close()
	var out []*sagehost.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	return out, nil
}

// Update applies fn to a record inside one transaction.
func (s *DB) Update(ctx context.Context, kind sagehost.Kind, account, region, name string, fn func(*sagehost.Record) error) (*sagehost.Record, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("update %s %s: %w", kind, name, err)
	}
	defer tx.Rollback()
	r, err := getRecord(ctx, tx, kind, account, region, name)
	if err != nil {
		return nil, err
	}
	if err := fn(r); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE resources SET last_modified_time = ?, status = ?, doc = ?
		WHERE kind = ? AND account = ? AND region = ? AND name_key = ?`,
		r.LastModifiedTime.UnixNano(), r.Status, []byte(r.Doc), string(kind), account, region, nameKey(name)); err != nil {
		return nil, fmt.Errorf("update %s %s: %w", kind, name, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("update %s %s: commit: %w", kind, name, err)
	}
	return r, nil
}

// Delete removes a record and its tags.
func (s *DB) Delete(ctx context.Context, kind sagehost.Kind, account, region, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", kind, name, err)
	}
	defer tx.Rollback()
	var arn string
	err = tx.QueryRowContext(ctx, `DELETE FROM resources WHERE kind = ? AND account = ? AND region = ? AND name_key = ? RETURNING arn`,
		string(kind), account, region, nameKey(name)).Scan(&arn)
	if errors.Is(err, sql.ErrNoRows) {
		return sagehost.ErrNotFound
	} else if err != nil {
		return fmt.Errorf("delete %s %s: %w", kind, name, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE arn = ?`, arn); err != nil {
		return fmt.Errorf("delete %s %s: tags: %w", kind, name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete %s %s: commit: %w", kind, name, err)
	}
	return nil
}

func putTags(ctx context.Context, tx *sql.Tx, arn string, tags []sagehost.Tag) error {
	for _, t := range tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tags (arn, key, value) VALUES (?, ?, ?)
			ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value`, arn, t.Key, t.Value); err != nil {
			return fmt.Errorf("put tag %q: %w", t.Key, err)
		}
	}
	return nil
}

// AddTags sets tags on an ARN.
func (s *DB) AddTags(ctx context.Context, arn string, tags []sagehost.Tag) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add tags: %w", err)
	}
	defer tx.Rollback()
	if err := putTags(ctx, tx, arn, tags); err != nil {
		return fmt.Errorf("add tags: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add tags: commit: %w", err)
	}
	return nil
}

// ListTags returns the tags of an ARN ordered by key.
func (s *DB) ListTags(ctx context.Context, arn string) ([]sagehost.Tag, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key, value FROM tags WHERE arn = ? ORDER BY key`, arn)
	if err != nil {
		return nil, fmt.Errorf("list tags: %w", err)
	}
	defer rows.Close()
	var out []sagehost.Tag
	for rows.Next() {
		var t sagehost.Tag
		if err := rows.Scan(&t.Key, &t.Value); err != nil {
			return nil, fmt.Errorf("list tags: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteTags removes tag keys from an ARN.
func (s *DB) DeleteTags(ctx context.Context, arn string, keys []string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete tags: %w", err)
	}
	defer tx.Rollback()
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE arn = ? AND key = ?`, arn, k); err != nil {
			return fmt.Errorf("delete tag %q: %w", k, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete tags: commit: %w", err)
	}
	return nil
}
