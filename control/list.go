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
	var kept []*sagehost.Record
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
		kept = append(kept, r)
	}
	key := func(r *sagehost.Record) string {
		var k string
		switch in.SortBy {
		case "Name":
			k = strings.ToLower(r.Name)
		case "Status":
			k = r.Status
		default: // CreationTime
			k = fmt.Sprintf("%020d", r.CreationTime.UnixNano())
		}
		return k + "\x00" + strings.ToLower(r.Name)
	}
	desc := in.SortOrder != "Ascending"
	sort.SliceStable(kept, func(i, j int) bool {
		if desc {
			return key(kept[i]) > key(kept[j])
		}
		return key(kept[i]) < key(kept[j])
	})
	start := 0
	if in.NextToken != "" {
		after, err := decodeToken(in.NextToken)
		if err != nil {
			return nil, "", err
		}
		start = sort.Search(len(kept), func(i int) bool {
			if desc {
				return key(kept[i]) < after
			}
			return key(kept[i]) > after
		})
	}
	max := defaultMax
	if in.MaxResults != nil {
		max = *in.MaxResults
	}
	end := start + max
	next := ""
	if end < len(kept) {
		next = encodeToken(key(kept[end-1]))
	} else {
		end = len(kept)
	}
	return kept[start:end], next, nil
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
