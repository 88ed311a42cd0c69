// A Go origin behind kontur-gate: every handler knows who the user is.
//
//	GATE_URL=https://site.example ORIGIN_URL=https://origin.example PORT=8080 go run .
package main

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"os"
)

type userKey struct{}

// RequireGateIdentity answers 401 unless the request carries a valid assertion, and puts the
// verified Identity into the request's context.
func RequireGateIdentity(verifier *GateVerifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, err := verifier.Verify(r)
		if err != nil {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthenticated", "reason": err.Error()})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
	})
}

func whoami(w http.ResponseWriter, r *http.Request) {
	user := r.Context().Value(userKey{}).(*Identity)
	writeJSON(w, http.StatusOK, struct {
		*Identity // verified: sub, email, name from the assertion
		// The plain headers, for comparison: trustworthy only when nothing but the gate reaches this app.
		HeaderUser string `json:"header_user"`
		HeaderName string `json:"header_name"`
	}{user, r.Header.Get("X-Forwarded-User"), DecodeName(r.Header.Get("X-Forwarded-Name"))})
}

func writeJSON(w http.ResponseWriter, status int, body interface{}) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func main() {
	verifier, err := NewGateVerifier(os.Getenv("GATE_URL"), os.Getenv("ORIGIN_URL"))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/whoami", whoami)
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	log.Printf("listening on http://127.0.0.1:%s", port)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, RequireGateIdentity(verifier, mux)))
}
