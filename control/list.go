package control

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sagehost/sagehost"
)

// ListInput holds the members shared by the List* operations.
type ListInput struct {
	SortBy                 string `json:"SortBy"`
	SortOrder              string `json:"SortOrder"`
	NextToken              string `json:"NextToken"`
	MaxResults             *int   `json:"MaxResults"`
	NameContains           string `json:"NameContains"`
	CreationTimeBefore     *Time  `json:"CreationTimeBefore"`
	CreationTimeAfter      *Time  `json:"CreationTimeAfter"`
	LastModifiedTimeBefore *Time  `json:"LastModifiedTimeBefore"`
	LastModifiedTimeAfter  *Time  `json:"LastModifiedTimeAfter"`
	StatusEquals           string `json:"StatusEquals"`
	// EndpointNameEquals and VariantNameEquals filter
	// ListInferenceComponents (the caller applies them).
	EndpointNameEquals string `json:"EndpointNameEquals"`
	VariantNameEquals  string `json:"VariantNameEquals"`
}

// page filters, sorts and paginates records. defaultMax is the operation's
// default page size.
func page(recs []*sagehost.Record, in *ListInput, defaultMax int) ([]*sagehost.Record, string, error) {
	// keyed is a kept record with its sort key, computed once.
	type keyed struct {
		r   *sagehost.Record
		key string
	}
	var kept []keyed
	for _, r := range recs {
		if in.NameContains != "" && !strings.Contains(strings.ToLower(r.Name), strings.ToLower(in.NameContains)) {
			continue
		}
		if in.CreationTimeBefore != nil && !r.CreationTime.Before(time.Time(*in.CreationTimeBefore)) {
			continue
		}
		if in.CreationTimeAfter != nil && !r.CreationTime.After(time.Time(*in.CreationTimeAfter)) {
			continue
		}
		if in.LastModifiedTimeBefore != nil && !r.LastModifiedTime.Before(time.Time(*in.LastModifiedTimeBefore)) {
			continue
		}
		if in.LastModifiedTimeAfter != nil && !r.LastModifiedTime.After(time.Time(*in.LastModifiedTimeAfter)) {
			continue
		}
		if in.StatusEquals != "" && r.Status != in.StatusEquals {
			continue
		}
		kept = append(kept, keyed{r, sortKey(r, in.SortBy)})
	}
	desc := in.SortOrder != "Ascending"
	sort.SliceStable(kept, func(i, j int) bool {
		if desc {
			return kept[i].key > kept[j].key
		}
		return kept[i].key < kept[j].key
	})
	start := 0
	if in.NextToken != "" {
		after, err := decodeToken(in.NextToken)
		if err != nil {
			return nil, "", err
		}
		start = sort.Search(len(kept), func(i int) bool {
			if desc {
				return kept[i].key < after
			}
			return kept[i].key > after
		})
	}
	max := defaultMax
	if in.MaxResults != nil {
		max = *in.MaxResults
	}
	end := start + max
	next := ""
	if end < len(kept) {
		next = encodeToken(kept[end-1].key)
	} else {
		end = len(kept)
	}
	out := make([]*sagehost.Record, 0, end-start)
	for _, k := range kept[start:end] {
		out = append(out, k.r)
	}
	return out, next, nil
}

// sortKey is a record's key for ordering a list by sortBy (Name, Status or
// else CreationTime), names breaking ties; page tokens carry it.
func sortKey(r *sagehost.Record, sortBy string) string {
	var k string
	switch sortBy {
	case "Name":
		k = strings.ToLower(r.Name)
	case "Status":
		k = r.Status
	default: // CreationTime
		k = fmt.Sprintf("%020d", r.CreationTime.UnixNano())
	}
	return k + "\x00" + strings.ToLower(r.Name)
}

type pageToken struct {
	After string `json:"a"`
}

func encodeToken(after string) string {
	b, _ := json.Marshal(pageToken{After: after})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	var t pageToken
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.After == "" {
		return "", validation("Invalid pagination token: %q.", tok)
	}
	return t.After, nil
}
