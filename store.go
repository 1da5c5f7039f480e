package sagehost

import "context"

// Store persists control-plane resources. Names are unique per (kind,
// account, region) regardless of case; lookups ignore case too.
type Store interface {
	// Create inserts rec together with its tags, atomically. It returns
	// ErrAlreadyExists when a record of that kind and name exists.
	Create(ctx context.Context, rec *Record, tags []Tag) error
	// Get returns one record, or ErrNotFound.
	Get(ctx context.Context, kind Kind, account, region, name string) (*Record, error)
	// List returns every record of a kind in one account and region.
	List(ctx context.Context, kind Kind, account, region string) ([]*Record, error)
	// ListAll returns every record of a kind across accounts and regions.
	ListAll(ctx context.Context, kind Kind) ([]*Record, error)
	// Update reads a record, applies fn and writes the result, in one
	// transaction. An error from fn aborts the update and is returned as is.
	// It returns ErrNotFound when the record does not exist.
	Update(ctx context.Context, kind Kind, account, region, name string, fn func(*Record) error) (*Record, error)
	// Delete removes a record and its tags; ErrNotFound if it does not exist.
	Delete(ctx context.Context, kind Kind, account, region, name string) error

	// AddTags sets tags on a resource ARN, replacing values of existing keys.
	AddTags(ctx context.Context, arn string, tags []Tag) error
	// ListTags returns the tags of a resource ARN, ordered by key.
	ListTags(ctx context.Context, arn string) ([]Tag, error)
	// DeleteTags removes the named tag keys of a resource ARN.
	DeleteTags(ctx context.Context, arn string, keys []string) error

	Close() error
}
