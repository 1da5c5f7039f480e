package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sagehost/sagehost"
	"github.com/sagehost/sagehost/store/sqlite"
)

func open(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func rec(name string) *sagehost.Record {
	now := time.Now().UTC()
	return &sagehost.Record{
		Kind: sagehost.KindModel, Account: "111111111111", Region: "us-east-1", Name: name,
		ARN:          sagehost.ARN("us-east-1", "111111111111", sagehost.KindModel, name),
		CreationTime: now, LastModifiedTime: now, Doc: []byte(`{"x":1}`),
	}
}

func TestCreateGetCaseInsensitiveAndPersistent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	db := open(t, path)
	if err := db.Create(ctx, rec("MyModel"), []sagehost.Tag{{Key: "team", Value: "a"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Create(ctx, rec("mymodel"), nil); !errors.Is(err, sagehost.ErrAlreadyExists) {
		t.Fatalf("duplicate name in other case: got %v, want ErrAlreadyExists", err)
	}
	got, err := db.Get(ctx, sagehost.KindModel, "111111111111", "us-east-1", "MYMODEL")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "MyModel" || string(got.Doc) != `{"x":1}` {
		t.Fatalf("got %+v", got)
	}
	// Other account and other region see nothing.
	if _, err := db.Get(ctx, sagehost.KindModel, "222222222222", "us-east-1", "MyModel"); !errors.Is(err, sagehost.ErrNotFound) {
		t.Fatalf("other account: %v", err)
	}
	if _, err := db.Get(ctx, sagehost.KindModel, "111111111111", "eu-west-1", "MyModel"); !errors.Is(err, sagehost.ErrNotFound) {
		t.Fatalf("other region: %v", err)
	}
	db.Close()

	db2 := open(t, path)
	got, err = db2.Get(ctx, sagehost.KindModel, "111111111111", "us-east-1", "MyModel")
	if err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	tags, err := db2.ListTags(ctx, got.ARN)
	if err != nil || len(tags) != 1 || tags[0] != (sagehost.Tag{Key: "team", Value: "a"}) {
		t.Fatalf("tags after reopen: %v %v", tags, err)
	}
}

func TestUpdateAbortsOnError(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "state.db"))
	if err := db.Create(ctx, rec("m"), nil); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	_, err := db.Update(ctx, sagehost.KindModel, "111111111111", "us-east-1", "m", func(r *sagehost.Record) error {
		r.Doc = []byte(`{"changed":true}`)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	got, _ := db.Get(ctx, sagehost.KindModel, "111111111111", "us-east-1", "m")
	if string(got.Doc) != `{"x":1}` {
		t.Fatalf("aborted update was written: %s", got.Doc)
	}
	if _, err := db.Update(ctx, sagehost.KindModel, "111111111111", "us-east-1", "nope", func(*sagehost.Record) error { return nil }); !errors.Is(err, sagehost.ErrNotFound) {
		t.Fatalf("update of missing: %v", err)
	}
}

func TestConcurrentUpdatesAreSerialised(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "state.db"))
	r := rec("counter")
	r.Status = "0"
	if err := db.Create(ctx, r, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	const n = 20
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.Update(ctx, sagehost.KindModel, "111111111111", "us-east-1", "counter", func(r *sagehost.Record) error {
				var v int
				for _, c := range r.Status {
					v = v*10 + int(c-'0')
				}
				v++
				r.Status = itoa(v)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _ := db.Get(ctx, sagehost.KindModel, "111111111111", "us-east-1", "counter")
	if got.Status != itoa(n) {
		t.Fatalf("lost updates: counter = %s, want %d", got.Status, n)
	}
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	s := ""
	for ; v > 0; v /= 10 {
		s = string(rune('0'+v%10)) + s
	}
	return s
}

func TestDeleteRemovesTagsAndRecreateStartsClean(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "state.db"))
	r := rec("m")
	if err := db.Create(ctx, r, []sagehost.Tag{{Key: "a", Value: "1"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.AddTags(ctx, r.ARN, []sagehost.Tag{{Key: "a", Value: "2"}, {Key: "b", Value: "3"}}); err != nil {
		t.Fatal(err)
	}
	tags, _ := db.ListTags(ctx, r.ARN)
	if len(tags) != 2 || tags[0].Value != "2" {
		t.Fatalf("tags %v", tags)
	}
	if err := db.DeleteTags(ctx, r.ARN, []string{"b", "missing"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(ctx, sagehost.KindModel, r.Account, r.Region, "M"); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(ctx, sagehost.KindModel, r.Account, r.Region, "M"); !errors.Is(err, sagehost.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := db.Create(ctx, rec("m"), nil); err != nil {
		t.Fatal(err)
	}
	if tags, _ := db.ListTags(ctx, r.ARN); len(tags) != 0 {
		t.Fatalf("recreated resource inherited tags %v", tags)
	}
	all, err := db.ListAll(ctx, sagehost.KindModel)
	if err != nil || len(all) != 1 {
		t.Fatalf("ListAll %v %v", all, err)
	}
}

// TestCreateDuplicateChangesNothing: a Create refused as a duplicate leaves
// the existing record and its tags as they were.
func TestCreateDuplicateChangesNothing(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "state.db"))
	r := rec("m")
	if err := db.Create(ctx, r, []sagehost.Tag{{Key: "a", Value: "1"}}); err != nil {
		t.Fatal(err)
	}
	dup := rec("m")
	dup.Doc = []byte(`{"x":2}`)
	if err := db.Create(ctx, dup, []sagehost.Tag{{Key: "b", Value: "2"}}); !errors.Is(err, sagehost.ErrAlreadyExists) {
		t.Fatalf("duplicate: got %v, want ErrAlreadyExists", err)
	}
	got, err := db.Get(ctx, sagehost.KindModel, r.Account, r.Region, "m")
	if err != nil || string(got.Doc) != `{"x":1}` {
		t.Fatalf("after duplicate: %+v %v", got, err)
	}
	if tags, err := db.ListTags(ctx, r.ARN); err != nil || len(tags) != 1 || tags[0] != (sagehost.Tag{Key: "a", Value: "1"}) {
		t.Fatalf("tags after duplicate: %v %v", tags, err)
	}
	// Deleting another name leaves this one.
	if err := db.Delete(ctx, sagehost.KindModel, r.Account, r.Region, "n"); !errors.Is(err, sagehost.ErrNotFound) {
		t.Fatalf("delete of a missing name: %v", err)
	}
	if _, err := db.Get(ctx, sagehost.KindModel, r.Account, r.Region, "m"); err != nil {
		t.Fatal(err)
	}
}
