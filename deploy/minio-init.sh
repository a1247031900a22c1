#!/bin/sh
# Témoin — prepare the MinIO evidence bucket (one-shot job `minio-init` in compose.yaml).
#
# Creates the bucket with Object Lock (which also turns versioning on), makes sure versioning is
# enabled, sets a default COMPLIANCE retention of one day as a safety net, and gives the
# application its own account, limited to that bucket. Safe to run again: every step is
# idempotent, and a step that cannot be made true fails the job, so the services that depend on
# it do not start against an unlocked bucket.
#
# Runs in the MinIO client image, which has a shell and coreutils but no grep, sed or awk:
# everything below is POSIX sh and mc.
set -eu

: "${MINIO_ROOT_USER:?MINIO_ROOT_USER must be set (MinIO administrator)}"
: "${MINIO_ROOT_PASSWORD:?MINIO_ROOT_PASSWORD must be set (MinIO administrator)}"
: "${S3_ACCESS_KEY_ID:?S3_ACCESS_KEY_ID must be set (the application account)}"
: "${S3_SECRET_ACCESS_KEY:?S3_SECRET_ACCESS_KEY must be set (the application account)}"
MINIO_URL="${MINIO_URL:-http://minio:9000}"
S3_BUCKET="${S3_BUCKET:-temoin-evidence}"

# Safety net only. Each original gets its real retention end (recording start + one month,
# CSI R241-13) explicitly from the application, and holds extend it. The bucket default only
# covers an object whose explicit retention failed to apply. It must never exceed the legal
# one-month retention: a COMPLIANCE lock cannot be shortened or removed by anyone, so a longer
# default would make the legal erasure impossible. Keep it at one day.
DEFAULT_RETENTION="1d"

ALIAS="temoin"
POLICY="temoin-app"

log() { printf 'minio-init: %s\n' "$*"; }
die() { printf 'minio-init: ERROR: %s\n' "$*" >&2; exit 1; }

if [ "$S3_ACCESS_KEY_ID" = "$MINIO_ROOT_USER" ]; then
    die "S3_ACCESS_KEY_ID must differ from MINIO_ROOT_USER: the application gets its own account, limited to the evidence bucket"
fi

# 1. Reach the server (compose already waits for its healthcheck; this covers manual runs).
tries=0
until mc alias set "$ALIAS" "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || die "cannot log in to $MINIO_URL as MINIO_ROOT_USER (server down or wrong credentials)"
    sleep 2
done
log "connected to $MINIO_URL"

TARGET="$ALIAS/$S3_BUCKET"

# 2. The bucket, with Object Lock. Object Lock can only be chosen when a bucket is created:
#    --ignore-existing keeps reruns quiet, and step 4 catches a bucket made without the lock.
mc mb --with-lock --ignore-existing "$TARGET"

# 3. Versioning: --with-lock already enabled it; enabling it again is harmless and makes sure.
mc version enable "$TARGET"

# 4. Refuse a bucket that exists without Object Lock (made by hand, or by an older script).
if ! mc retention info --default "$TARGET" >/dev/null 2>&1; then
    die "bucket $S3_BUCKET exists without Object Lock; it cannot be locked afterwards. Create a new bucket (set S3_BUCKET) and copy the objects into it"
fi

# 5. Default COMPLIANCE retention: the safety net described at the top.
mc retention set --default COMPLIANCE "$DEFAULT_RETENTION" "$TARGET"
mc retention info --default "$TARGET"

# 6. The application account: objects of this bucket only. It can write, read, set retention and
#    legal holds and delete versions (MinIO itself refuses to delete a locked version or shorten a
#    COMPLIANCE retention); it can re-apply the bucket's versioning and lock settings, as the
#    application's own ensure_bucket does. It cannot create or delete buckets, change policies,
#    users, lifecycle or replication, or bypass governance.
policy_file="$(mktemp)"
trap 'rm -f "$policy_file"' EXIT
cat > "$policy_file" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "TemoinEvidenceBucket",
      "Effect": "Allow",
      "Action": [
        "s3:GetBucketLocation",
        "s3:ListBucket",
        "s3:ListBucketVersions",
        "s3:ListBucketMultipartUploads",
        "s3:GetBucketVersioning",
        "s3:PutBucketVersioning",
        "s3:GetBucketObjectLockConfiguration",
        "s3:PutBucketObjectLockConfiguration"
      ],
      "Resource": ["arn:aws:s3:::${S3_BUCKET}"]
    },
    {
      "Sid": "TemoinEvidenceObjects",
      "Effect": "Allow",
      "Action": [
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
        "s3:GetObjectRetention",
        "s3:PutObjectRetention",
        "s3:GetObjectLegalHold",
        "s3:PutObjectLegalHold",
        "s3:GetObjectTagging",
        "s3:PutObjectTagging"
      ],
      "Resource": ["arn:aws:s3:::${S3_BUCKET}/*"]
    }
  ]
}
JSON
# `user add` on an existing user updates its secret; `policy create` replaces the policy.
mc admin user add "$ALIAS" "$S3_ACCESS_KEY_ID" "$S3_SECRET_ACCESS_KEY" >/dev/null
mc admin policy create "$ALIAS" "$POLICY" "$policy_file"
# Older mc releases fail when the policy is already attached; accept that case only.
if ! mc admin policy attach "$ALIAS" "$POLICY" --user "$S3_ACCESS_KEY_ID" 2>/dev/null; then
    entities="$(mc admin policy entities "$ALIAS" --user "$S3_ACCESS_KEY_ID")" \
        || die "cannot read the policies of the application account"
    case "$entities" in
        *"$POLICY"*) log "policy $POLICY already attached to the application account" ;;
        *) die "cannot attach policy $POLICY to the application account" ;;
    esac
fi

log "bucket $S3_BUCKET ready: Object Lock on, versioning on, default COMPLIANCE $DEFAULT_RETENTION"
