# shellcheck shell=sh
# datafold-lib.sh: what the datafold-* scripts share. Sourced, never run.
#
# POSIX sh (tested under dash and bash). Crypto is done by `openssl` only
# (OpenSSL 3.0 or later); HTTP by `curl`. Wire profile: docs/protocol.md.
#
# Secrets: a passphrase is read once (from a file, a file descriptor or
# $DATAFOLD_AUTH_PASSPHRASE) into a shell variable that is never exported and
# reaches openssl only through the environment of that one command
# (`-passin env:DATAFOLD_OPENSSL_PASS`). A decrypted private key is held in a
# shell variable and fed to openssl on standard input by the `printf` builtin;
# it is never written to disk and never appears in any command line.
#
# Exit status of every script: 0 success, 1 failure (local: missing tool, bad
# key, wrong passphrase, file problem), 2 usage error, 3 the server could not
# be reached, 4 the server refused the request (HTTP status >= 400).

# Anything of these names inherited from the environment is dropped first, so
# that the values assigned below are never exported to child processes.
unset DF_PASS DF_KEY_PEM DF_TMP DF_PARTIAL DATAFOLD_OPENSSL_PASS
DF_PROG=${DF_PROG:-datafold}
DF_NL='
'
DF_CR=$(printf '\r')
DF_TAB=$(printf '\t')
DF_TMP=
DF_PARTIAL=
DF_PASS=
DF_PASS_FILE=
DF_PASS_FD=
DF_KEY_PEM=
DF_LOG_FILE=
DF_TIMEOUT=30
# shellcheck disable=SC2034 # used by the scripts
DF_ITER_MIN=600000
LC_ALL=C
export LC_ALL

# --- messages and exits -------------------------------------------------------

# df_oneline TEXT: TEXT with line breaks and tabs turned into spaces.
df_oneline() {
    printf '%s' "$1" | tr '\n\r\t' '   '
}

df_err() {
    _df_msg="$DF_PROG: error: $(df_oneline "$*")"
    printf '%s\n' "$_df_msg" >&2
    if [ -n "$DF_LOG_FILE" ]; then
        printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$_df_msg" >>"$DF_LOG_FILE" 2>/dev/null || :
    fi
}

# df_die MESSAGE: print "<prog>: error: MESSAGE" and exit 1.
df_die() {
    df_err "$*"
    exit 1
}

# df_fail STATUS MESSAGE: the same with exit status STATUS.
df_fail() {
    _df_status=$1
    shift
    df_err "$*"
    exit "$_df_status"
}

# df_usage_error MESSAGE: a command-line mistake (exit 2).
df_usage_error() {
    df_err "$* (see $DF_PROG -h)"
    exit 2
}

# df_first_error FILE: the most useful line of a tool's error output, on one line.
df_first_error() {
    [ -s "$1" ] || return 0
    _df_line=$(grep -i -e 'bad decrypt' -e 'error' -e 'fail' -e 'cannot' -e 'unable' -e 'denied' -e 'read-only' "$1" | sed -n '1p')
    [ -n "$_df_line" ] || _df_line=$(sed -n '1p' "$1")
    df_oneline "$_df_line"
}

# df_reason_of FILE: the OS reason at the end of an error line such as
# "mkdir: cannot create directory 'x': Read-only file system".
df_reason_of() {
    _df_line=$(sed -n '1p' "$1")
    df_oneline "${_df_line##*: }"
}

# --- option helpers -----------------------------------------------------------

# df_need_arg OPTION COUNT: fail unless the option has a value after it.
df_need_arg() {
    [ "$2" -ge 2 ] || df_usage_error "option $1 needs a value"
}

df_is_uint() {
    case $1 in '' | *[!0-9]*) return 1 ;; esac
    return 0
}

# --- tools and temporary files ------------------------------------------------

df_need_openssl() {
    command -v openssl >/dev/null 2>&1 ||
        df_die "openssl not found in PATH: install OpenSSL 3.0 or later (Debian/Ubuntu: apt-get install openssl)"
    _df_version=$(openssl version 2>/dev/null) || df_die "'openssl version' failed: is the openssl in PATH broken?"
    case $_df_version in
        'OpenSSL '[3-9].* | 'OpenSSL '[1-9][0-9]*) ;;
        *) df_die "OpenSSL 3.0 or later is needed (found: $_df_version)" ;;
    esac
}

df_need_curl() {
    command -v curl >/dev/null 2>&1 ||
        df_die "curl not found in PATH: install it (Debian/Ubuntu: apt-get install curl)"
}

df_cleanup() {
    if [ -n "$DF_PARTIAL" ]; then
        rm -f -- "$DF_PARTIAL"
    fi
    if [ -n "$DF_TMP" ]; then
        rm -rf -- "$DF_TMP"
    fi
    DF_KEY_PEM=
    DF_PASS=
}

trap df_cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# df_tmpdir: a private temporary folder ($DF_TMP, mode 0700), removed on exit.
# It only ever holds public data (digests, signature bases, signatures,
# public keys, server answers).
df_tmpdir() {
    [ -z "$DF_TMP" ] || return 0
    DF_TMP=$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/datafold.XXXXXX" 2>/dev/null) ||
        df_die "cannot create a temporary folder in ${TMPDIR:-/tmp}"
}

# --- encodings (all by openssl) -----------------------------------------------

# df_b64 FILE: standard base64 of the file's bytes, one line, padded.
df_b64() {
    openssl base64 -A -in "$1"
}

# df_b64url FILE: base64url without padding (RFC 4648 section 5).
df_b64url() {
    _df_b64=$(openssl base64 -A -in "$1") || return 1
    printf '%s' "$_df_b64" | tr '+/' '-_' | tr -d '='
}

# df_size FILE: the size in bytes.
df_size() {
    _df_size=$(wc -c <"$1") || return 1
    printf '%s' "$_df_size" | tr -d ' '
}

# df_new_nonce: 16 random bytes from openssl, base64url (22 characters).
df_new_nonce() {
    df_tmpdir
    openssl rand -out "$DF_TMP/nonce.bin" 16 2>/dev/null || df_die "openssl rand failed"
    _df_nonce=$(df_b64url "$DF_TMP/nonce.bin") || df_die "cannot encode the nonce"
    [ ${#_df_nonce} -eq 22 ] || df_die "openssl produced a malformed nonce"
    printf '%s' "$_df_nonce"
}

# df_content_digest FILE: the Content-Digest value "sha-256=:<base64>:" (RFC 9530).
df_content_digest() {
    df_tmpdir
    openssl dgst -sha256 -binary -out "$DF_TMP/digest.bin" "$1" 2>"$DF_TMP/err" ||
        df_die "cannot hash $1: $(df_first_error "$DF_TMP/err")"
    _df_digest=$(df_b64 "$DF_TMP/digest.bin") || df_die "cannot encode the digest"
    [ ${#_df_digest} -eq 44 ] || df_die "openssl produced a malformed SHA-256 digest"
    printf 'sha-256=:%s:' "$_df_digest"
}

# --- passphrases --------------------------------------------------------------

df__first_line() {
    DF_PASS=
    IFS= read -r DF_PASS || :
    DF_PASS=${DF_PASS%"$DF_CR"}
}

# df_read_passphrase: set DF_PASS from --passphrase-file ($DF_PASS_FILE),
# --passphrase-fd ($DF_PASS_FD) or $DATAFOLD_AUTH_PASSPHRASE, in that order.
# From a file or descriptor only the first line counts, without its line
# ending (as with keytools and `openssl -passin file:`). Returns 1 when no
# source is given; an empty passphrase is an error.
df_read_passphrase() {
    if [ -n "$DF_PASS_FILE" ]; then
        [ -e "$DF_PASS_FILE" ] || df_die "passphrase file $DF_PASS_FILE does not exist"
        [ ! -d "$DF_PASS_FILE" ] || df_die "passphrase file $DF_PASS_FILE is a folder"
        [ -r "$DF_PASS_FILE" ] || df_die "cannot read passphrase file $DF_PASS_FILE: permission denied"
        df__first_line <"$DF_PASS_FILE" || df_die "cannot read passphrase file $DF_PASS_FILE"
        _df_from="passphrase file $DF_PASS_FILE"
    elif [ -n "$DF_PASS_FD" ]; then
        case $DF_PASS_FD in
            [0-9])
                (: <&"$DF_PASS_FD") 2>/dev/null || df_die "file descriptor $DF_PASS_FD is not open for reading"
                # shellcheck disable=SC2039,SC3021
                df__first_line <&"$DF_PASS_FD"
                ;;
            *)
                [ -r "/dev/fd/$DF_PASS_FD" ] || df_die "file descriptor $DF_PASS_FD is not open for reading"
                df__first_line <"/dev/fd/$DF_PASS_FD" || df_die "cannot read file descriptor $DF_PASS_FD"
                ;;
        esac
        _df_from="file descriptor $DF_PASS_FD"
    elif [ "${DATAFOLD_AUTH_PASSPHRASE+set}" = set ]; then
        DF_PASS=$DATAFOLD_AUTH_PASSPHRASE
        # Not inherited by curl or any later child: only openssl gets it, per command.
        unset DATAFOLD_AUTH_PASSPHRASE
        _df_from="\$DATAFOLD_AUTH_PASSPHRASE"
    else
        return 1
    fi
    [ -n "$DF_PASS" ] || df_die "empty passphrase (from $_df_from)"
    return 0
}

# df_passphrase_option OPTION VALUE: record --passphrase-file / --passphrase-fd.
df_passphrase_option() {
    [ -z "$DF_PASS_FILE$DF_PASS_FD" ] ||
        df_usage_error "give only one of --passphrase-file and --passphrase-fd"
    case $1 in
        --passphrase-file)
            [ -n "$2" ] || df_usage_error "--passphrase-file needs a file name"
            DF_PASS_FILE=$2
            ;;
        --passphrase-fd)
            df_is_uint "$2" || df_usage_error "--passphrase-fd needs a file descriptor number, not '$2'"
            DF_PASS_FD=$2
            ;;
    esac
}

# shellcheck disable=SC2034 # used by the scripts
DF_PASS_HELP="Passphrase (never on the command line), first source given wins:
  --passphrase-file FILE   the first line of FILE
  --passphrase-fd N        the first line read from open file descriptor N
  \$DATAFOLD_AUTH_PASSPHRASE the whole value of this environment variable
Use the same UTF-8 bytes as keytools (which NFC-normalizes what it reads)."

# --- keys ---------------------------------------------------------------------

DF_ED25519_SPKI_PREFIX=302a300506032b6570032100

# df_check_private_mode FILE: refuse a key file that group or others can access.
df_check_private_mode() {
    _df_mode=$(ls -lLd -- "$1" 2>/dev/null) || df_die "cannot read key file $1"
    case $_df_mode in
        ????------*) ;;
        *) df_die "key file $1 has mode ${_df_mode%% *}: group or others can access it; fix: chmod 600 $1" ;;
    esac
}

# df_public_from_der: check $DF_TMP/pub.der is an Ed25519 SPKI and set DF_X
# (the 32-byte public key, base64url), DF_KEYID (RFC 7638 thumbprint) and
# DF_JWK. Returns 1 if it is not an Ed25519 public key.
df_public_from_der() {
    [ "$(df_size "$DF_TMP/pub.der")" = 44 ] || return 1
    _df_prefix=$(od -An -tx1 -N12 "$DF_TMP/pub.der" | tr -d ' \n')
    [ "$_df_prefix" = "$DF_ED25519_SPKI_PREFIX" ] || return 1
    tail -c 32 "$DF_TMP/pub.der" >"$DF_TMP/pub.raw" || return 1
    DF_X=$(df_b64url "$DF_TMP/pub.raw") || return 1
    [ ${#DF_X} -eq 43 ] || return 1
    DF_JWK="{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"$DF_X\"}"
    # RFC 7638: SHA-256 over the required members in lexicographic order, no white space.
    printf '{"crv":"Ed25519","kty":"OKP","x":"%s"}' "$DF_X" >"$DF_TMP/thumbprint.json"
    openssl dgst -sha256 -binary -out "$DF_TMP/thumbprint.bin" "$DF_TMP/thumbprint.json" 2>/dev/null || return 1
    DF_KEYID=$(df_b64url "$DF_TMP/thumbprint.bin") || return 1
    [ ${#DF_KEYID} -eq 43 ] || return 1
    return 0
}

# df_pem_kind FILE: "encrypted", "private", "public" or "" from the PEM label.
df_pem_kind() {
    if grep -q -e '^-----BEGIN ENCRYPTED PRIVATE KEY-----' "$1" 2>/dev/null; then
        echo encrypted
    elif grep -q -e '^-----BEGIN PRIVATE KEY-----' "$1" 2>/dev/null; then
        echo private
    elif grep -q -e '^-----BEGIN PUBLIC KEY-----' "$1" 2>/dev/null; then
        echo public
    fi
}

# df_check_key_file FILE: exists, is a readable regular file.
df_check_key_file() {
    [ -e "$1" ] || df_die "key file $1 does not exist"
    [ -f "$1" ] || df_die "key file $1 is not a regular file"
    [ -r "$1" ] || df_die "cannot read key file $1: permission denied"
}

# df_load_private_key FILE: decrypt (if needed) an Ed25519 PKCS#8 PEM key into
# DF_KEY_PEM (memory only) and set DF_X, DF_KEYID, DF_JWK. A passphrase is
# read only if the key is encrypted.
df_load_private_key() {
    df_tmpdir
    df_check_key_file "$1"
    _df_kind=$(df_pem_kind "$1")
    [ "$_df_kind" = public ] || df_check_private_mode "$1"
    case $_df_kind in
        encrypted)
            if [ -z "$DF_PASS" ]; then
                df_read_passphrase ||
                    df_die "key file $1 is encrypted: give its passphrase with --passphrase-file, --passphrase-fd or \$DATAFOLD_AUTH_PASSPHRASE"
            fi
            DF_KEY_PEM=$(DATAFOLD_OPENSSL_PASS=$DF_PASS openssl pkey -in "$1" -passin env:DATAFOLD_OPENSSL_PASS 2>"$DF_TMP/err") ||
                df_die "cannot decrypt key file $1: wrong passphrase (or a damaged key file)"
            ;;
        private)
            DF_KEY_PEM=$(openssl pkey -in "$1" 2>"$DF_TMP/err") ||
                df_die "cannot read key file $1: $(df_first_error "$DF_TMP/err")"
            ;;
        public)
            df_die "$1 holds a public key; a private key is needed"
            ;;
        *)
            df_die "$1 is not a PKCS#8 PEM private key (BEGIN PRIVATE KEY or BEGIN ENCRYPTED PRIVATE KEY)"
            ;;
    esac
    rm -f -- "$DF_TMP/pub.der"
    printf '%s\n' "$DF_KEY_PEM" | openssl pkey -pubout -outform DER -out "$DF_TMP/pub.der" 2>"$DF_TMP/err" ||
        df_die "cannot derive the public key of $1: $(df_first_error "$DF_TMP/err")"
    df_public_from_der || df_die "$1 is not an Ed25519 key"
}

# df_load_public_key FILE: set DF_X, DF_KEYID, DF_JWK from an SPKI PEM public key.
df_load_public_key() {
    df_tmpdir
    df_check_key_file "$1"
    rm -f -- "$DF_TMP/pub.der"
    openssl pkey -pubin -in "$1" -outform DER -out "$DF_TMP/pub.der" 2>"$DF_TMP/err" ||
        df_die "cannot read public key $1: $(df_first_error "$DF_TMP/err")"
    df_public_from_der || df_die "$1 is not an Ed25519 public key"
}

# df_public_pem: the SPKI PEM of the loaded key (from $DF_TMP/pub.der).
df_public_pem() {
    openssl pkey -pubin -inform DER -in "$DF_TMP/pub.der" 2>"$DF_TMP/err" ||
        df_die "cannot write the public key: $(df_first_error "$DF_TMP/err")"
}

# df_sign FILE: the Ed25519 signature (RFC 8032, pure) of FILE's bytes by the
# loaded private key, in standard base64 (88 characters).
df_sign() {
    rm -f -- "$DF_TMP/sig.bin"
    printf '%s\n' "$DF_KEY_PEM" |
        openssl pkeyutl -sign -rawin -inkey /dev/stdin -in "$1" -out "$DF_TMP/sig.bin" 2>"$DF_TMP/err" ||
        df_die "openssl could not sign: $(df_first_error "$DF_TMP/err")"
    [ "$(df_size "$DF_TMP/sig.bin")" = 64 ] || df_die "openssl produced a malformed signature"
    df_b64 "$DF_TMP/sig.bin"
}

# df_check_folder_private DIR: refuse a folder that group or others can access.
df_check_folder_private() {
    _df_mode=$(ls -ld -- "$1" 2>/dev/null) || df_die "cannot inspect folder $1"
    case $_df_mode in
        drwx------*) ;;
        *)
            df_die "folder $1 has mode ${_df_mode%% *}; key folders must be private (0700): chmod 700 $1, or name a new folder"
            ;;
    esac
}

# df_generate FILE ITERATIONS: a new Ed25519 key in FILE, encrypted with DF_PASS
# as PKCS#8 PBES2 (PBKDF2-HMAC-SHA256, ITERATIONS, AES-256-CBC), mode 0600 in a
# 0700 folder (created if missing). Never overwrites; on any failure no key
# file is left behind. Loads the new key (DF_KEY_PEM, DF_KEYID, ...).
df_generate() {
    _df_file=$1
    _df_iter=$2
    df_tmpdir
    if [ -e "$_df_file" ] || [ -h "$_df_file" ]; then
        df_die "$_df_file already exists; refusing to overwrite it (move it away or choose another file)"
    fi
    _df_dir=$(dirname -- "$_df_file")
    _df_base=$(basename -- "$_df_file")
    case $_df_file in */) df_die "$_df_file names a folder; give a key file name" ;; esac
    if [ -e "$_df_dir" ] || [ -h "$_df_dir" ]; then
        [ -d "$_df_dir" ] || df_die "cannot use folder $_df_dir: it exists and is not a folder"
        df_check_folder_private "$_df_dir"
    else
        (umask 077 && mkdir -p -- "$_df_dir") 2>"$DF_TMP/err" ||
            df_die "cannot create folder $_df_dir: $(df_reason_of "$DF_TMP/err")"
    fi
    DF_PARTIAL=$(umask 077 && mktemp "$_df_dir/.$_df_base.XXXXXX" 2>"$DF_TMP/err") ||
        df_die "cannot write in folder $_df_dir: $(df_reason_of "$DF_TMP/err")"
    set -- -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter "$_df_iter"
    if openssl pkcs8 -help 2>&1 | grep -q -e -saltlen; then
        set -- "$@" -saltlen 16 # OpenSSL 3.2+; 3.0 uses an 8-byte salt
    fi
    # The plaintext key only travels through the pipe.
    openssl genpkey -algorithm ed25519 2>"$DF_TMP/err.genpkey" |
        DATAFOLD_OPENSSL_PASS=$DF_PASS openssl pkcs8 "$@" -passout env:DATAFOLD_OPENSSL_PASS \
            -out "$DF_PARTIAL" 2>"$DF_TMP/err" ||
        df_die "openssl could not generate or encrypt the key: $(df_first_error "$DF_TMP/err.genpkey") $(df_first_error "$DF_TMP/err")"
    [ -s "$DF_PARTIAL" ] || df_die "openssl wrote an empty key file"
    # Self-test: the file decrypts with the passphrase, is Ed25519, and signs
    # a message that its public key verifies.
    df_load_private_key "$DF_PARTIAL"
    printf 'datafold-auth key self-test %s' "$DF_KEYID" >"$DF_TMP/selftest.msg"
    df_sign "$DF_TMP/selftest.msg" >/dev/null
    df_public_pem >"$DF_TMP/pub.pem"
    openssl pkeyutl -verify -pubin -inkey "$DF_TMP/pub.pem" -rawin -in "$DF_TMP/selftest.msg" \
        -sigfile "$DF_TMP/sig.bin" >/dev/null 2>&1 || df_die "self-test failed: the new key's signature does not verify"
    # Link (fails if FILE appeared meanwhile), then drop the temporary name.
    if ! ln -- "$DF_PARTIAL" "$_df_file" 2>"$DF_TMP/err"; then
        if [ -e "$_df_file" ] || [ -h "$_df_file" ]; then
            df_die "$_df_file already exists; refusing to overwrite it (move it away or choose another file)"
        fi
        mv -- "$DF_PARTIAL" "$_df_file" 2>"$DF_TMP/err" ||
            df_die "cannot create $_df_file: $(df_reason_of "$DF_TMP/err")"
    fi
    rm -f -- "$DF_PARTIAL"
    DF_PARTIAL=
}

# --- URLs and requests -----------------------------------------------------------

# df_parse_url URL: split an absolute http(s) URL (scheme://host[:port]/path?query)
# into DF_SCHEME, DF_AUTHORITY (lowercase, default port removed), DF_PATH (as
# given, "/" if empty) and DF_QUERY ("?" plus the query as given, or just "?").
df_parse_url() {
    _df_url=$1
    case $_df_url in
        *[!!-~]*) df_usage_error "URL '$(df_oneline "$_df_url")' contains spaces, control or non-ASCII characters: percent-encode them" ;;
        *'#'*) df_usage_error "URL $_df_url has a fragment (#...), which is never sent: remove it" ;;
    esac
    _df_scheme=$(printf '%s' "${_df_url%%://*}" | tr '[:upper:]' '[:lower:]')
    case $_df_url in
        *://*) ;;
        *) df_usage_error "not an absolute URL: $_df_url (expected http://host[:port]/path?query or https://...)" ;;
    esac
    case $_df_scheme in
        http | https) ;;
        *) df_usage_error "unsupported URL scheme '$_df_scheme' in $_df_url: only http and https" ;;
    esac
    _df_rest=${_df_url#*://}
    _df_auth=${_df_rest%%[/?]*}
    _df_tail=${_df_rest#"$_df_auth"}
    [ -n "$_df_auth" ] || df_usage_error "URL $_df_url has no host"
    case $_df_auth in *@*) df_usage_error "URL $_df_url has user information (user@host), which is not supported" ;; esac
    case $_df_auth in
        \[*\]) _df_host=$_df_auth _df_port= ;;
        \[*\]:*) _df_host="${_df_auth%%\]*}]" _df_port=${_df_auth##*\]:} ;;
        \[*) df_usage_error "bad IPv6 address in URL $_df_url" ;;
        *:*:*) df_usage_error "IPv6 addresses in URLs must be in brackets: $_df_url" ;;
        *:*) _df_host=${_df_auth%:*} _df_port=${_df_auth##*:} ;;
        *) _df_host=$_df_auth _df_port= ;;
    esac
    case $_df_host in
        \[*\])
            _df_inner=${_df_host#\[}
            _df_inner=${_df_inner%\]}
            case $_df_inner in '' | *[!0-9A-Fa-f:.]*) df_usage_error "bad IPv6 address in URL $_df_url" ;; esac
            ;;
        '' | *[!A-Za-z0-9._~%-]*) df_usage_error "bad host name in URL $_df_url" ;;
    esac
    case $_df_auth in
        *:) df_usage_error "URL $_df_url has an empty port" ;;
    esac
    if [ -n "$_df_port" ]; then
        { df_is_uint "$_df_port" && [ ${#_df_port} -le 5 ] && [ "$_df_port" -le 65535 ]; } ||
            df_usage_error "bad port '$_df_port' in URL $_df_url"
    fi
    _df_host=$(printf '%s' "$_df_host" | tr '[:upper:]' '[:lower:]')
    # shellcheck disable=SC2034 # for the scripts
    DF_SCHEME=$_df_scheme
    DF_AUTHORITY=$_df_host
    if [ -n "$_df_port" ]; then
        case $_df_scheme:$_df_port in
            http:80 | https:443) ;;
            *) DF_AUTHORITY="$_df_host:$_df_port" ;;
        esac
    fi
    DF_PATH=${_df_tail%%\?*}
    [ -n "$DF_PATH" ] || DF_PATH=/
    case $_df_tail in
        *\?*) DF_QUERY="?${_df_tail#*\?}" ;;
        *) DF_QUERY="?" ;;
    esac
}

# df_trim TEXT: TEXT without leading and trailing spaces and tabs.
df_trim() {
    _df_t=$1
    while :; do
        case $_df_t in
            [" $DF_TAB"]*) _df_t=${_df_t#?} ;;
            *) break ;;
        esac
    done
    while :; do
        case $_df_t in
            *[" $DF_TAB"]) _df_t=${_df_t%?} ;;
            *) break ;;
        esac
    done
    printf '%s' "$_df_t"
}

# df_add_header "Name: value": check a header option and remember it in
# DF_HEADERS (newline-separated "Name: value" lines) and, for Content-Type,
# in DF_CONTENT_TYPE (several are joined with ", ", RFC 9421 section 2.1).
DF_HEADERS=
DF_CONTENT_TYPE=
DF_HAS_CONTENT_TYPE=
df_add_header() {
    case $1 in
        *:*) ;;
        *) df_usage_error "a header is 'Name: value', not '$(df_oneline "$1")'" ;;
    esac
    _df_name=$(df_trim "${1%%:*}")
    _df_value=$(df_trim "${1#*:}")
    case $_df_name in
        '' | *[!A-Za-z0-9!#\$%\&\'*+.^_\`\|~-]*) df_usage_error "bad header name in '$(df_oneline "$1")'" ;;
    esac
    case $_df_value in
        *[!"$DF_TAB"\ -~]*) df_usage_error "header $_df_name: only printable ASCII is allowed in values (no line breaks)" ;;
    esac
    _df_lower=$(printf '%s' "$_df_name" | tr '[:upper:]' '[:lower:]')
    case $_df_lower in
        content-digest | signature | signature-input)
            df_usage_error "header $_df_name is computed by this script; do not give it"
            ;;
        content-type)
            if [ -n "$DF_HAS_CONTENT_TYPE" ]; then
                DF_CONTENT_TYPE="$DF_CONTENT_TYPE, $_df_value"
            else
                DF_CONTENT_TYPE=$_df_value
            fi
            DF_HAS_CONTENT_TYPE=1
            ;;
    esac
    DF_HEADERS="$DF_HEADERS$_df_name: $_df_value$DF_NL"
}

# df_check_method METHOD
df_check_method() {
    case $1 in
        '' | *[!A-Za-z0-9._-]*) df_usage_error "bad HTTP method '$(df_oneline "$1")'" ;;
    esac
}

# df_body_from_data TEXT / df_body_from_file FILE: set DF_BODY to a file
# holding the request content ("" when there is none).
DF_BODY=
df_body_from_data() {
    df_tmpdir
    printf '%s' "$1" >"$DF_TMP/body"
    DF_BODY=$DF_TMP/body
}
df_body_from_file() {
    df_tmpdir
    if [ "$1" = - ]; then
        cat >"$DF_TMP/body" || df_die "cannot read the body from standard input"
        DF_BODY=$DF_TMP/body
        return 0
    fi
    [ -e "$1" ] || df_die "body file $1 does not exist"
    [ -f "$1" ] || df_die "body file $1 is not a regular file"
    [ -r "$1" ] || df_die "cannot read body file $1: permission denied"
    DF_BODY=$1
}

# df_sign_request METHOD URL [CREATED [NONCE]]: sign a request per the DataFold
# profile (docs/protocol.md section 2) with the loaded key. Uses DF_BODY and
# DF_CONTENT_TYPE; writes the signature base to $DF_TMP/base and sets
# DF_H_DIGEST (empty without content), DF_H_SIGNATURE_INPUT, DF_H_SIGNATURE.
df_sign_request() {
    _df_method=$1
    df_check_method "$_df_method"
    df_parse_url "$2"
    _df_created=${3:-}
    _df_nonce=${4:-}
    if [ -z "$_df_created" ]; then
        _df_created=$(date +%s)
    fi
    if ! df_is_uint "$_df_created" || [ ${#_df_created} -gt 15 ]; then
        df_usage_error "created must be epoch seconds, not '$_df_created'"
    fi
    if [ -z "$_df_nonce" ]; then
        _df_nonce=$(df_new_nonce) || exit 1
    fi
    case $_df_nonce in
        *[!A-Za-z0-9._~+/=-]*) df_usage_error "a nonce is 1-128 of A-Z a-z 0-9 . _ ~ + / = -" ;;
    esac
    [ ${#_df_nonce} -le 128 ] || df_usage_error "a nonce is at most 128 characters"
    _df_components='"@method" "@authority" "@path" "@query"'
    _df_base="\"@method\": $_df_method$DF_NL\"@authority\": $DF_AUTHORITY$DF_NL\"@path\": $DF_PATH$DF_NL\"@query\": $DF_QUERY"
    DF_H_DIGEST=
    if [ -n "$DF_BODY" ] && [ -s "$DF_BODY" ]; then
        DF_H_DIGEST=$(df_content_digest "$DF_BODY") || exit 1
        _df_components="$_df_components \"content-digest\""
        _df_base="$_df_base$DF_NL\"content-digest\": $DF_H_DIGEST"
    fi
    if [ -n "$DF_HAS_CONTENT_TYPE" ]; then
        _df_components="$_df_components \"content-type\""
        _df_base="$_df_base$DF_NL\"content-type\": $DF_CONTENT_TYPE"
    fi
    _df_params="($_df_components);created=$_df_created;expires=$((_df_created + 300));nonce=\"$_df_nonce\";keyid=\"$DF_KEYID\";alg=\"ed25519\";tag=\"datafold\""
    _df_base="$_df_base$DF_NL\"@signature-params\": $_df_params"
    printf '%s' "$_df_base" >"$DF_TMP/base"
    DF_H_SIGNATURE_INPUT="df=$_df_params"
    _df_sig=$(df_sign "$DF_TMP/base") || exit 1
    DF_H_SIGNATURE="df=:$_df_sig:"
}

# df_curl ARGS...: run curl, the answer body in $DF_TMP/response and its
# headers in $DF_TMP/response-headers; set DF_STATUS (HTTP status) and
# DF_REASON (the problem document's reason, if any). Exit 3 if the server
# cannot be reached.
df_curl() {
    df_tmpdir
    rm -f -- "$DF_TMP/response" "$DF_TMP/response-headers"
    : >"$DF_TMP/response"
    if DF_STATUS=$(curl -sS -g --path-as-is --proto =http,https --connect-timeout 10 --max-time "$DF_TIMEOUT" \
        -H 'Expect:' -o "$DF_TMP/response" -D "$DF_TMP/response-headers" -w '%{http_code}' "$@" 2>"$DF_TMP/err.curl"); then
        :
    else
        _df_rc=$?
        df_fail 3 "cannot reach $DF_URL: $(df_first_error "$DF_TMP/err.curl") (curl exit $_df_rc)"
    fi
    DF_REASON=$(sed -n 's/.*"reason" *: *"\([A-Za-z0-9_]*\)".*/\1/p' "$DF_TMP/response" | sed -n '1p')
}

# df_send METHOD URL [CURL-ARGS...]: send the signed request made by
# df_sign_request (same method, URL, body and headers) with curl.
df_send() {
    _df_method=$1
    DF_URL=$2
    shift 2
    set -- "$@" -H "Signature-Input: $DF_H_SIGNATURE_INPUT" -H "Signature: $DF_H_SIGNATURE"
    if [ -n "$DF_H_DIGEST" ]; then
        set -- "$@" -H "Content-Digest: $DF_H_DIGEST"
    fi
    if [ -n "$DF_BODY" ]; then
        set -- "$@" --data-binary "@$DF_BODY"
        # curl would add "Content-Type: application/x-www-form-urlencoded".
        [ -n "$DF_HAS_CONTENT_TYPE" ] || set -- "$@" -H 'Content-Type:'
    fi
    _df_rest=$DF_HEADERS
    while [ -n "$_df_rest" ]; do
        _df_line=${_df_rest%%"$DF_NL"*}
        _df_rest=${_df_rest#*"$DF_NL"}
        set -- "$@" -H "$_df_line"
    done
    if [ "$_df_method" = HEAD ]; then
        set -- "$@" --head
    else
        set -- "$@" -X "$_df_method"
    fi
    df_curl "$@" -- "$DF_URL"
}

# --- registration -----------------------------------------------------------------

# df_json_string TEXT: TEXT as a JSON string (quotes and backslashes escaped).
df_json_string() {
    case $1 in
        *[[:cntrl:]]*) df_usage_error "control characters are not allowed in '$(df_oneline "$1")'" ;;
    esac
    printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

# df_registration_body CLIENT_ID LABEL SCOPES: the registration document
# (docs/protocol.md section 4) for the loaded key in $DF_TMP/register.json;
# empty arguments are left out; SCOPES is a space-separated list.
df_registration_body() {
    _df_doc="{\"jwk\":$DF_JWK"
    if [ -n "$1" ]; then
        case $1 in
            *[!A-Za-z0-9._@:-]*) df_usage_error "a client id is 1-128 of A-Z a-z 0-9 . _ @ : -" ;;
        esac
        [ ${#1} -le 128 ] || df_usage_error "a client id is at most 128 characters"
        _df_doc="$_df_doc,\"client_id\":\"$1\""
    fi
    if [ -n "$2" ]; then
        _df_doc="$_df_doc,\"label\":$(df_json_string "$2")"
    fi
    if [ -n "$3" ]; then
        _df_list=
        set -f # the scopes are split on spaces but never globbed
        for _df_scope in $3; do
            case $_df_scope in
                *[!!-~]* | *[\"\\]*) df_usage_error "bad scope '$_df_scope' (RFC 6749 scope-token)" ;;
            esac
            _df_list="$_df_list${_df_list:+,}\"$_df_scope\""
        done
        set +f
        _df_doc="$_df_doc,\"scopes\":[$_df_list]"
    fi
    printf '%s}' "$_df_doc" >"$DF_TMP/register.json"
}

# df_json_field NAME FILE: a string member of a flat JSON document ("" if absent).
df_json_field() {
    sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" "$2" | sed -n '1p'
}

# df_register URL CLIENT_ID LABEL SCOPES: POST the signed registration of the
# loaded key to URL (the keys collection, {mount}/keys). Sets DF_STATUS,
# DF_REASON; the answer is in $DF_TMP/response.
df_register() {
    DF_SENT_SCOPES=$4
    df_registration_body "$2" "$3" "$4"
    DF_BODY=$DF_TMP/register.json
    DF_HEADERS=
    DF_HAS_CONTENT_TYPE=
    df_add_header "Content-Type: application/json"
    df_sign_request POST "$1"
    df_send POST "$1"
}

# df_key_record URL: GET URL/{keyid} (public, unsigned). Sets DF_STATUS,
# DF_REASON and DF_KEY_STATUS (active, pending, ... or "").
# shellcheck disable=SC2034 # DF_KEY_STATUS is used by datafold-setup
df_key_record() {
    DF_URL="${1%/}/$DF_KEYID"
    df_curl -X GET -- "$DF_URL"
    DF_KEY_STATUS=
    if [ "$DF_STATUS" = 200 ]; then
        DF_KEY_STATUS=$(df_json_field status "$DF_TMP/response")
    fi
}

# df_refused WHAT: the message for a refusal, e.g. "registration refused: HTTP 409 duplicate_key",
# or "...: HTTP 403 scope_not_allowed; refused scopes: wirte" (df_refused_scopes).
df_refused() {
    printf '%s: HTTP %s%s' "$1" "$DF_STATUS" "${DF_REASON:+ $DF_REASON}"
    if [ "$DF_REASON" = scope_not_allowed ]; then
        _df_refused=$(df_refused_scopes "${DF_SENT_SCOPES:-}")
        [ -z "$_df_refused" ] || printf '; refused scopes: %s' "$_df_refused"
    fi
}

# df_refused_scopes SCOPES: those of SCOPES (space-separated, as df_register sent them) that
# the problem in $DF_TMP/response lists in its refused_scopes member, comma-separated ("" if
# none). Only scopes we sent are printed, never the server's text.
df_refused_scopes() {
    _df_tail=$(sed -n 's/.*"refused_scopes" *: *\[//p' "$DF_TMP/response" | sed -n '1p')
    _df_out=
    if [ -n "$_df_tail" ]; then
        set -f # the scopes are split on spaces but never globbed
        for _df_scope in $1; do
            case $_df_tail in
                *"\"$_df_scope\""*) _df_out="$_df_out${_df_out:+, }$_df_scope" ;;
            esac
        done
        set +f
    fi
    printf '%s' "$_df_out"
}
