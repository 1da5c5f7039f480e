package artifact

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// gzipMagic starts every gzip stream.
var gzipMagic = []byte{0x1f, 0x8b}

// gzipped reports whether br's next bytes are gzipMagic (reading, not
// consuming, them).
func gzipped(br *bufio.Reader) bool {
	magic, _ := br.Peek(len(gzipMagic))
	return bytes.Equal(magic, gzipMagic)
}

// extractArchive reads a gzip-compressed tar archive from r into the stage
// and returns the SHA-256 of all bytes of r (read to the end, at most
// MaxArchiveBytes). uri is only used in messages.
func (s *stage) extractArchive(ctx context.Context, uri string, r io.Reader) (string, error) {
	h := sha256.New()
	limit := s.f.cfg.MaxArchiveBytes
	hr := &hashingReader{
		r:     ctxReader{ctx, r},
		h:     h,
		limit: limit,
		err:   errorf(ErrTooLarge, nil, "model data archive is larger than %d bytes (the limit); use a smaller archive or raise the limit", limit),
	}
	br := bufio.NewReaderSize(hr, 64<<10)
	if !gzipped(br) {
		if err := ctx.Err(); err != nil {
			return "", context.Cause(ctx)
		}
		if hr.n > limit {
			return "", hr.err
		}
		return "", notArchive(uri, nil)
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return "", s.archiveError(ctx, uri, err)
	}
	if err := s.extractTar(ctx, tar.NewReader(zr)); err != nil {
		return "", s.archiveError(ctx, uri, err)
	}
	// Hash whatever follows the tar end marker too.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return "", s.archiveError(ctx, uri, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// archiveError classifies an error met while extracting: our own errors and
// cancellation pass through, anything else means a corrupt archive.
func (s *stage) archiveError(ctx context.Context, uri string, err error) error {
	var fe *fetchError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%w (%w)", context.Cause(ctx), err)
	case errors.As(err, &fe):
		return err
	default:
		return notArchive(uri, err)
	}
}

func notArchive(uri string, cause error) error {
	return &fetchError{
		kind:    ErrBadArchive,
		msg:     fmt.Sprintf("model data at %q is not a gzip-compressed tar archive; upload a model.tar.gz, or set CompressionType None for an uncompressed file", uri),
		cause:   cause,
		withURI: true,
	}
}

// unsafeEntry is the error for an archive entry that must not be extracted.
func unsafeEntry(name, why string) error {
	return errorf(ErrUnsafeArchive, nil, "archive entry %q %s; rebuild the archive without it", name, why)
}

// cleanEntryName validates an archive member name and returns it cleaned and
// relative to the model directory; "." means the directory itself.
func cleanEntryName(name string) (string, error) {
	if name == "" {
		return "", unsafeEntry(name, "has an empty name")
	}
	if strings.ContainsRune(name, 0) {
		return "", unsafeEntry(name, "contains a NUL byte")
	}
	if strings.HasPrefix(name, "/") {
		return "", unsafeEntry(name, "has an absolute path")
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", unsafeEntry(name, "points outside the model directory (\"..\")")
	}
	for _, c := range strings.Split(clean, "/") {
		if len(c) > 255 {
			return "", unsafeEntry(name, "has a path segment longer than 255 bytes")
		}
	}
	return clean, nil
}

// extractTar writes every entry of tr into the stage.
func (s *stage) extractTar(ctx context.Context, tr *tar.Reader) error {
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		// Every entry counts, even one replacing an earlier entry of the
		// same name, so an archive cannot make extraction work unboundedly.
		if err := s.addEntry(); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // metadata only
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if name == "." {
				continue
			}
			if fi, err := s.root.Lstat(name); err == nil {
				if !fi.IsDir() {
					return unsafeEntry(hdr.Name, "is a directory but an earlier entry of that name is not")
				}
				continue
			}
			if err := s.root.MkdirAll(name, 0o755); err != nil {
				return entryError(hdr.Name, err)
			}
		case tar.TypeReg, tar.TypeGNUSparse:
			if err := s.prepare(hdr.Name, name); err != nil {
				return err
			}
			if hdr.Size > s.f.cfg.MaxExtractedBytes-s.bytes {
				return s.tooLarge()
			}
			if _, err := s.writeFile(ctx, name, tr, hdr.Mode&0o100 != 0); err != nil {
				var fe *fetchError
				if errors.As(err, &fe) || ctx.Err() != nil {
					return err
				}
				return entryError(hdr.Name, err)
			}
		case tar.TypeSymlink:
			target := hdr.Linkname
			switch {
			case target == "" || strings.ContainsRune(target, 0):
				return unsafeEntry(hdr.Name, "is a symbolic link with an invalid target")
			case strings.HasPrefix(target, "/"):
				return unsafeEntry(hdr.Name, fmt.Sprintf("is a symbolic link to the absolute path %q", target))
			}
			if t := path.Join(path.Dir(name), target); t == ".." || strings.HasPrefix(t, "../") {
				return unsafeEntry(hdr.Name, fmt.Sprintf("is a symbolic link to %q, outside the model directory", target))
			}
			if err := s.prepare(hdr.Name, name); err != nil {
				return err
			}
			if err := s.root.Symlink(target, name); err != nil {
				return entryError(hdr.Name, err)
			}
		case tar.TypeLink:
			target, err := cleanEntryName(hdr.Linkname)
			if err != nil || target == "." {
				return unsafeEntry(hdr.Name, fmt.Sprintf("is a hard link to %q, outside the model directory", hdr.Linkname))
			}
			fi, err := s.root.Lstat(target)
			if err != nil || !fi.Mode().IsRegular() {
				return unsafeEntry(hdr.Name, fmt.Sprintf("is a hard link to %q, which is not a regular file earlier in the archive", hdr.Linkname))
			}
			if err := s.prepare(hdr.Name, name); err != nil {
				return err
			}
			if err := s.root.Link(target, name); err != nil {
				return entryError(hdr.Name, err)
			}
		case tar.TypeChar, tar.TypeBlock:
			return unsafeEntry(hdr.Name, "is a device file")
		case tar.TypeFifo:
			return unsafeEntry(hdr.Name, "is a FIFO")
		default:
			return unsafeEntry(hdr.Name, fmt.Sprintf("has unsupported type %q", hdr.Typeflag))
		}
	}
}

// prepare makes way for a non-directory entry: its parent directories exist
// and nothing but an older non-directory entry of the same name (which a
// later entry replaces, as tar does) is in the way.
func (s *stage) prepare(orig, name string) error {
	if name == "." {
		return unsafeEntry(orig, "names the model directory itself")
	}
	if dir := path.Dir(name); dir != "." {
		if err := s.root.MkdirAll(dir, 0o755); err != nil {
			return entryError(orig, err)
		}
	}
	fi, err := s.root.Lstat(name)
	if err != nil {
		return nil
	}
	if fi.IsDir() {
		return unsafeEntry(orig, "is a file but an earlier entry of that name is a directory")
	}
	if err := s.root.Remove(name); err != nil {
		return entryError(orig, err)
	}
	return nil
}

// entryError reports a failure to create an entry. Escaping through a
// symbolic link is caught by os.Root and reported as unsafe.
func entryError(name string, err error) error {
	if strings.Contains(err.Error(), "escapes") {
		return errorf(ErrUnsafeArchive, nil, "archive entry %q would be written outside the model directory through a symbolic link; rebuild the archive without it", name)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return errorf(ErrBadArchive, err, "cannot extract archive entry %q", name)
}
