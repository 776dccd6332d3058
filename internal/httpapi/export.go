package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
)

// exportContentType is the media type of each export format.
var exportContentType = map[string]string{
	export.FormatPlain:    "text/plain; charset=utf-8",
	export.FormatCSV:      "text/csv; charset=utf-8",
	export.FormatNftables: "text/plain; charset=utf-8",
	export.FormatIPSet:    "text/plain; charset=utf-8",
	export.FormatSuricata: "text/plain; charset=utf-8",
	export.FormatZeek:     "text/tab-separated-values; charset=utf-8",
	export.FormatRPZ:      "text/dns",
	export.FormatHosts:    "text/plain; charset=utf-8",
	export.FormatSTIX:     "application/stix+json;version=2.1",
}

// ExportFilesIndex is the body of GET /export/{format} for a format that
// renders several files (misp-feed, suricata-dataset): the files' names,
// each served at /export/{format}/{name}.
type ExportFilesIndex struct {
	Format string   `json:"format"`
	Files  []string `json:"files"`
}

// ParseExportQuery reads an export request from a URL query: type, collection,
// tlp, min-confidence, source, max-age, country (all repeatable or
// comma-separated), include-warninglisted, country-list, name, zone,
// no-aggregate.
func ParseExportQuery(format string, q url.Values) (node.ExportRequest, error) {
	req := node.ExportRequest{Format: format}
	list := func(name string) []string {
		var out []string
		for _, v := range q[name] {
			for s := range strings.SplitSeq(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
		}
		return out
	}
	for _, t := range list("type") {
		k, err := observable.ParseKind(t)
		if err != nil {
			return req, entente.Errorf(entente.EINVALID, "type: %v", err)
		}
		req.Filter.Kinds = append(req.Filter.Kinds, k)
	}
	req.Filter.Collections = list("collection")
	if v := q.Get("tlp"); v != "" {
		t, err := stix.ParseTLP(v)
		if err != nil {
			return req, entente.Errorf(entente.EINVALID, "tlp: %v", err)
		}
		req.Filter.MaxTLP = &t
	}
	if v := q.Get("min-confidence"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			return req, entente.Errorf(entente.EINVALID, "min-confidence: %q is not a number from 0 to 100", v)
		}
		req.Filter.MinConfidence = n
	}
	req.Filter.Sources = list("source")
	if v := q.Get("max-age"); v != "" {
		d, err := parseAge(v)
		if err != nil {
			return req, entente.Errorf(entente.EINVALID, "max-age: %v", err)
		}
		req.Filter.MaxAge = d
	}
	req.Filter.Countries = list("country")
	req.Countries = list("country-list")
	if v := q.Get("include-warninglisted"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return req, entente.Errorf(entente.EINVALID, "include-warninglisted: %q is not true or false", v)
		}
		req.Filter.IncludeWarninglisted = b
	}
	if v := q.Get("no-aggregate"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return req, entente.Errorf(entente.EINVALID, "no-aggregate: %q is not true or false", v)
		}
		req.Options.NoAggregate = b
	}
	req.Options.Name = q.Get("name")
	req.Options.Zone = q.Get("zone")
	return req, nil
}

// parseAge reads a duration: Go syntax ("36h") or a number of days ("7d").
func parseAge(v string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 100*366 {
			return 0, entente.Errorf(entente.EINVALID, "%q is not a number of days", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, entente.Errorf(entente.EINVALID, "%q is not a duration such as 36h or 7d", v)
	}
	return d, nil
}

// exportFormat serves GET /export/{format}: the indicators the key may
// read (the policy gate decides for partners), rendered, with an ETag; a
// request whose If-None-Match names the current ETag is answered 304
// without rendering when nothing changed.
func (h *handler) exportFormat(w http.ResponseWriter, r *http.Request) {
	h.serveExport(w, r, r.PathValue("format"), "")
}

// exportFile serves GET /export/{format}/{file}: one file of a multi-file
// export (a MISP feed's manifest.json and events).
func (h *handler) exportFile(w http.ResponseWriter, r *http.Request) {
	h.serveExport(w, r, r.PathValue("format"), r.PathValue("file"))
}

func (h *handler) serveExport(w http.ResponseWriter, r *http.Request, format, file string) {
	if class := r.URL.Query().Get("class"); class != "" && file == "" {
		h.exportClass(w, r, format, class)
		return
	}
	req, err := ParseExportQuery(format, r.URL.Query())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	// The gate answers "not modified" itself, so that nothing is sent
	// (or audited) when the client holds the current export.
	req.IfNoneMatch = r.Header.Get("If-None-Match")
	res, err := h.svc.Export(r.Context(), principal(r), req)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	hd := w.Header()
	hd.Set("ETag", res.ETag)
	hd.Set("Cache-Control", "private, no-cache")
	hd.Set("Vary", "Authorization")
	if res.NotModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if export.MultiFile(format) && file == "" {
		idx := ExportFilesIndex{Format: format, Files: []string{}}
		for _, f := range res.Files {
			idx.Files = append(idx.Files, f.Name)
		}
		h.writeAPI(w, r, http.StatusOK, idx)
		return
	}
	f, ok := res.File(file)
	if !ok {
		h.writeError(w, r, entente.Errorf(entente.ENOTFOUND, "the %s export has no file %q", format, file))
		return
	}
	ct := exportContentType[format]
	if ct == "" {
		ct = "application/octet-stream"
		if strings.HasSuffix(f.Name, ".json") {
			ct = "application/json"
		} else if strings.HasSuffix(f.Name, ".txt") || strings.HasSuffix(f.Name, ".lst") {
			ct = "text/plain; charset=utf-8"
		}
	}
	if file == "" {
		hd.Set("Content-Disposition", `attachment; filename="`+f.Name+`"`)
	}
	writeBody(w, http.StatusOK, ct, f.Data)
}
