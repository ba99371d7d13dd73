/*
 * store-secrets.c - sealed secrets, shared by both store backends.
 *
 * `secret: true` values of a plan (CodeBuild environment overrides) must be
 * kept, since a resume sends the same StartBuild again, but not in the
 * history, which a copy of the store would give away. An ExecutionStarted
 * event is stored with them replaced by "****" and the flag
 * "secretsSealed"; the values go into the table sealed_secrets, encrypted
 * with AES-256-GCM (the execution id as associated data) under a 32-byte
 * key read from a file outside the store (store_set_key_file), made 0600 on
 * first use. Reading the history puts them back when the key opens the
 * box; otherwise the event keeps "****" and says why in
 * "secretsUnavailable", and viewers see what they would anyway.
 *
 * box: version (1) | nonce (12) | ciphertext | tag (16).
 *
 * This file makes and opens boxes and manages the key; the backends store
 * and read the boxes (store-backend.h).
 */
#include "store/store-backend.h"

#include "plan/doc-json.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define BOX_NONCE 12
#define BOX_TAG   16

void store_key_release(struct store_key *k)
{
	OPENSSL_cleanse(k->key, sizeof(k->key));
	free(k->path);
	k->path = NULL;
	k->have = false;
	k->checked = false;
}

int store_set_key_file(struct store *st, const char *path)
{
	store_key_release(&st->key);
	st->key.path = path ? xstrdup(path) : NULL;
	return 0;
}

/* Creates the missing directories above path (0700). */
static void make_key_dirs(const char *path)
{
	char *dir = xstrdup(path);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(dir, 0700);
		*p = '/';
	}
	free(dir);
}

/* Makes a new key file at path, unless another process makes it first. */
static int create_key_file(const char *path, struct strbuf *err)
{
	make_key_dirs(path);
	char *tmp = xstrfmt("%s.XXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC); /* 0600 */
	unsigned char key[32];
	int r = 0;
	if (fd < 0 || getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key) ||
	    write(fd, key, sizeof(key)) != (ssize_t)sizeof(key) || fsync(fd) < 0) {
		r = SP_EIO;
	} else if (link(tmp, path) < 0 && errno != EEXIST) {
		r = SP_EIO; /* EEXIST: another process made it; use theirs */
	}
	if (r < 0 && err)
		strbuf_addf(err, "cannot create the secret key file %s: %s", path, strerror(errno));
	OPENSSL_cleanse(key, sizeof(key));
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	free(tmp);
	return r;
}

/* Reads the key (creating the file first when create and it is missing). */
static int load_key(struct store_key *k, bool create, struct strbuf *err)
{
	if (k->have)
		return 0;
	if (!k->path) {
		if (err)
			strbuf_addstr(err, "no secret key file is configured for secret values");
		return SP_EINVAL;
	}
	int fd = open(k->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		int r = create_key_file(k->path, err);
		if (r < 0)
			return r;
		fd = open(k->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		if (err)
			strbuf_addf(err, "cannot open the secret key file %s: %s", k->path,
			            strerror(errno));
		return SP_EIO;
	}
	struct stat sb;
	int r = 0;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size != 32) {
		if (err)
			strbuf_addf(err, "%s is not a secret key file (32 bytes)", k->path);
		r = SP_EINVAL;
	} else if (sb.st_mode & 077) {
		if (err)
			strbuf_addf(err,
			            "the secret key file %s may be read by others (mode %04o): "
			            "chmod 600 it",
			            k->path, (unsigned)(sb.st_mode & 07777));
		r = SP_EINVAL;
	} else if (read(fd, k->key, sizeof(k->key)) != (ssize_t)sizeof(k->key)) {
		if (err)
			strbuf_addf(err, "cannot read the secret key file %s", k->path);
		r = SP_EIO;
	}
	close(fd);
	k->have = r == 0;
	return r;
}

int store_derive_key(struct store *st, const char *purpose, unsigned char out[32],
                     struct strbuf *err)
{
	int r = load_key(&st->key, true, err);
	if (r < 0)
		return r;
	/* A label of its own, so a derived key is never the sealing key nor
	 * another purpose's. */
	struct strbuf label = STRBUF_INIT;
	strbuf_addf(&label, "steppy derived key:%s", purpose);
	unsigned int len = 32;
	HMAC(EVP_sha256(), st->key.key, (int)sizeof(st->key.key), (const unsigned char *)label.buf,
	     label.len, out, &len);
	strbuf_release(&label);
	return 0;
}

/* AES-256-GCM of plain under the store's key; *ret_box is malloc'ed. */
static int box_seal(const struct store_key *k, const char *id, const char *plain, size_t len,
                    unsigned char **ret_box, size_t *ret_len)
{
	unsigned char *box = xmalloc(1 + BOX_NONCE + len + BOX_TAG);
	box[0] = 1;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, fin = 0;
	bool ok =
	    ctx && getrandom(box + 1, BOX_NONCE, 0) == BOX_NONCE &&
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->key, box + 1) == 1 &&
	    EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)id, (int)strlen(id)) == 1 &&
	    EVP_EncryptUpdate(ctx, box + 1 + BOX_NONCE, &n, (const unsigned char *)plain,
	                      (int)len) == 1 &&
	    EVP_EncryptFinal_ex(ctx, box + 1 + BOX_NONCE + n, &fin) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, BOX_TAG,
	                        box + 1 + BOX_NONCE + n + fin) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok) {
		free(box);
		return SP_EIO;
	}
	*ret_box = box;
	*ret_len = 1 + BOX_NONCE + (size_t)(n + fin) + BOX_TAG;
	return 0;
}

/* Opens a box; *ret_plain is malloc'ed and NUL-terminated. */
static int box_open(const struct store_key *k, const char *id, const unsigned char *box, size_t len,
                    char **ret_plain)
{
	if (len < 1 + BOX_NONCE + BOX_TAG || box[0] != 1 || len > INT32_MAX)
		return SP_EINVAL;
	size_t clen = len - 1 - BOX_NONCE - BOX_TAG;
	unsigned char *plain = xmalloc(clen + 1);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, fin = 0;
	bool ok =
	    ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->key, box + 1) == 1 &&
	    EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)id, (int)strlen(id)) == 1 &&
	    EVP_DecryptUpdate(ctx, plain, &n, box + 1 + BOX_NONCE, (int)clen) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, BOX_TAG,
	                        (void *)(box + len - BOX_TAG)) == 1 &&
	    EVP_DecryptFinal_ex(ctx, plain + n, &fin) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok) {
		OPENSSL_cleanse(plain, clen + 1);
		free(plain);
		return SP_EINVAL;
	}
	plain[n + fin] = '\0';
	*ret_plain = (char *)plain;
	return 0;
}

int store_secrets_seal(struct store_key *k, const char *id, const json_t *data, json_t **ret_copy,
                       unsigned char **ret_box, size_t *ret_len, struct strbuf *err)
{
	*ret_copy = NULL;
	*ret_box = NULL;
	*ret_len = 0;
	json_t *copy = json_deep_copy(data);
	json_t *taken = execution_started_seal(copy);
	if (!taken) {
		json_decref(copy);
		return 0;
	}
	int r = load_key(k, true, err);
	char *plain = r == 0 ? json_dumps(taken, JSON_COMPACT) : NULL;
	json_decref(taken); /* jansson does not wipe; the plan held the values anyway */
	unsigned char *box = NULL;
	size_t box_len = 0;
	if (r == 0 && (!plain || box_seal(k, id, plain, strlen(plain), &box, &box_len) < 0)) {
		if (err)
			strbuf_addstr(err, "cannot encrypt the secret values");
		r = SP_EIO;
	}
	if (plain) {
		OPENSSL_cleanse(plain, strlen(plain));
		free(plain);
	}
	if (r < 0) {
		json_decref(copy);
		return r;
	}
	json_object_set_new(copy, "secretsSealed", json_true());
	*ret_copy = copy;
	*ret_box = box;
	*ret_len = box_len;
	return 0;
}

void store_secrets_unseal(struct store_key *k, const char *id, json_t *data,
                          const unsigned char *box, size_t len, const char *missing)
{
	struct strbuf why = STRBUF_INIT;
	char *plain = NULL;
	if (!box) {
		strbuf_addstr(&why, missing ? missing : "the store has no sealed secrets for it");
	} else if (load_key(k, false, &why) < 0) {
		/* Read by viewers too: say what, not where the key file is. */
		strbuf_reset(&why);
		strbuf_addstr(&why, "this process cannot read its secret key file");
	} else if (box_open(k, id, box, len, &plain) < 0) {
		strbuf_addstr(&why, "this process's secret key file does not open them (another "
		                    "key?)");
	}
	if (plain) {
		json_t *taken = json_loads(plain, 0, NULL);
		OPENSSL_cleanse(plain, strlen(plain));
		free(plain);
		if (!taken || execution_started_unseal(data, taken) < 0)
			strbuf_addstr(&why, "the sealed secrets do not fit the plan");
		json_decref(taken);
	}
	if (why.len) {
		json_object_set_new(data, "secretsUnavailable", json_string(why.buf));
	} else {
		json_object_del(data, "secretsSealed");
	}
	strbuf_release(&why);
}

bool store_secrets_present(const json_t *data)
{
	json_t *copy = json_deep_copy(data);
	json_t *taken = copy ? execution_started_seal(copy) : NULL;
	bool any = taken != NULL;
	json_decref(taken);
	json_decref(copy);
	return any;
}

/* The fingerprint of the key: HMAC-SHA256 of a label of its own (never a
 * derived key's, whose labels start "steppy derived key:"), in hex. */
static void key_fingerprint(const struct store_key *k, char out[65])
{
	static const char label[] = "steppy secret key fingerprint";
	unsigned char mac[32];
	unsigned int len = sizeof(mac);
	HMAC(EVP_sha256(), k->key, (int)sizeof(k->key), (const unsigned char *)label,
	     sizeof(label) - 1, mac, &len);
	for (size_t i = 0; i < sizeof(mac); i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

/* A store that records no key adopts this one only if it opens the store's
 * sealed secrets (a store from before fingerprints: another node's key
 * must not become the store's). */
static int key_opens_store(struct store *st, struct strbuf *err)
{
	char *id = NULL;
	unsigned char *box = NULL;
	size_t len = 0;
	int r = st->ops->sealed_sample(st, &id, &box, &len, err);
	if (r <= 0)
		return r;
	char *plain = NULL;
	r = box_open(&st->key, id, box, len, &plain);
	if (r == 0) {
		OPENSSL_cleanse(plain, strlen(plain));
		free(plain);
	} else if (err) {
		strbuf_addf(err,
		            "the secret key file %s does not open the secret values this store "
		            "holds (release %s): they were sealed with another key; copy that key "
		            "file from the node that made them to %s (0600)",
		            st->key.path, id, st->key.path);
	}
	free(id);
	free(box);
	return r < 0 ? SP_EINVAL : 0;
}

int store_key_check(struct store *st, enum store_key_mode mode, bool *ret_made, struct strbuf *err)
{
	struct store_key *k = &st->key;
	if (ret_made)
		*ret_made = false;
	if (!k->path || k->checked)
		return 0;
	char *recorded = NULL;
	int r = st->ops->key_record(st, NULL, 0, &recorded, err);
	if (r < 0)
		return r;
	struct stat sb;
	bool missing = !k->have && lstat(k->path, &sb) < 0 && errno == ENOENT;
	if (missing && (recorded ? mode == STORE_KEY_OPTIONAL : mode != STORE_KEY_MAKE)) {
		free(recorded); /* nothing to check until a secret is stored */
		return 0;
	}
	/* A store from before fingerprints that holds sealed secrets: they
	 * were sealed with a key this process does not have; none is made. */
	if (r == 0 && missing && !recorded) {
		char *id = NULL;
		unsigned char *box = NULL;
		size_t len = 0;
		r = st->ops->sealed_sample(st, &id, &box, &len, err);
		if (r == 1 && err)
			strbuf_addf(
			    err,
			    "the secret key file %s does not exist, and this store holds "
			    "secret values sealed with a key (release %s): copy the secret key "
			    "file from the node that made them to %s (0600), then start again",
			    k->path, id, k->path);
		free(id);
		free(box);
		if (r != 0) {
			free(recorded);
			return r < 0 ? r : SP_EINVAL;
		}
	}
	if (missing && recorded) {
		if (err)
			strbuf_addf(
			    err,
			    "the secret key file %s does not exist, and this store records a "
			    "key (fingerprint %.12s): copy the "
			    "secret key file from another node that uses this store to %s "
			    "(0600), then start again (a new key would seal secrets no other "
			    "node can open)",
			    k->path, recorded, k->path);
		free(recorded);
		return SP_EINVAL;
	}
	r = load_key(k, missing, err);
	if (r == 0 && missing && ret_made)
		*ret_made = true;
	char fp[65];
	if (r == 0)
		key_fingerprint(k, fp);
	if (r == 0 && !recorded) {
		r = key_opens_store(st, err);
		/* A process that seals nothing only reads: a store that
		 * records no key is left so (its own key is not adopted). */
		if (r == 0 && mode == STORE_KEY_OPTIONAL) {
			k->checked = true;
			return 0;
		}
		if (r == 0)
			r = st->ops->key_record(st, fp, wall_clock_ms(), &recorded, err);
	}
	if (r == 0 && (!recorded || strcmp(recorded, fp) != 0)) {
		if (err && mode == STORE_KEY_OPTIONAL)
			strbuf_addf(err,
			            "the secret key file %s holds another key (fingerprint %.12s) "
			            "than this store records (%.12s): name the key file of the "
			            "service that uses this store, for example "
			            "STEPPY_SECRET_KEY_FILE=/var/lib/steppy/secret.key",
			            k->path, fp, recorded ? recorded : "none");
		else if (err)
			strbuf_addf(
			    err,
			    "the secret key file %s holds another key (fingerprint %.12s) than "
			    "this store records (%.12s): copy the secret key file from another "
			    "node that uses this store over it (0600), then start again; with "
			    "this key, releases it made could not be resumed by the others, "
			    "nor theirs by it",
			    k->path, fp, recorded ? recorded : "none");
		r = SP_EINVAL;
	}
	free(recorded);
	k->checked = r == 0;
	return r;
}
