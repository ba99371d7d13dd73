#!/usr/bin/python3
"""fake_aws.py -- a validating fake of the AWS APIs that steppy calls.

The test suite points steppy (and the AWS CLI, as a reference client) at this
server instead of AWS.  It serves STS, CodeBuild, CodePipeline, Lambda, SNS
and S3 on one port, plus IMDSv2 and ECS-style container credentials, keeps
all state in memory, and above all *checks every request the way AWS would*:

  * the SigV4 signature is recomputed with botocore's own canonical-request
    and string-to-sign code, for the secret of the access key used;
  * the request is parsed by the service's protocol (json-1.1, rest-json,
    query, rest-xml) and checked against the operation's input shape from
    botocore's service models: required members, types, enums, patterns,
    lengths, ranges, and no unknown members.  Members AWS added after the
    installed botocore are overlaid on its models (MODEL_OVERLAY).

Every violation is answered with the protocol's error (4xx), printed to
stderr and kept in a list that tests read at GET /_fake/violations, so a
client bug cannot pass silently.  Responses are checked against the output
shape too: a fake that answers something AWS would not is a bug, reported the
same way (kind "fake-bug").

Run with Debian's interpreter, which has python3-botocore:

    /usr/bin/python3 tests/aws/fake_aws.py --port 0 --port-file FILE [--log FILE]

Sections, in order: utilities; errors; service models and routing; shape
checking; request parsing per protocol; response writing per protocol; SigV4
verification and credentials; recorder and faults; the services (STS,
CodeBuild, CodePipeline, Lambda, SNS, S3); metadata endpoints (IMDSv2,
container credentials); the control API; the application; HTTP and main.
See tests/aws/README.md for the control API.
"""

import argparse
import base64
import binascii
import collections
import copy
import datetime
import difflib
import email.utils
import functools
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import signal
import socket
import string
import sys
import threading
import time
import traceback
import uuid
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote

import botocore.session
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from botocore.model import ServiceModel

# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

STATIC_ACCESS_KEY = 'AKIDSTEPPYTEST'
STATIC_SECRET_KEY = 'steppy/test+secret'
STATIC_ACCOUNT = '111111111111'
STATIC_USER_ARN = 'arn:aws:iam::111111111111:user/steppy-test'
INSTANCE_ID = 'i-0fake000000000001'     # the instance IMDS describes

SERVICES = ('sts', 'codebuild', 'codepipeline', 'lambda', 'sns', 's3')
MAX_CLOCK_SKEW = 15 * 60          # seconds, as AWS
IDEMPOTENCY_WINDOW = 5 * 60       # seconds, CodeBuild idempotency tokens
MAX_BODY = 64 * 1024 * 1024       # largest request body read
MAX_CALLS_KEPT = 50000            # oldest call records are dropped past this (--max-calls)
MAX_VIOLATIONS_KEPT = 10000
RECORD_BLOB_LIMIT = 64 * 1024     # blobs larger than this are summarised in records
SIGV4_TIMESTAMP = '%Y%m%dT%H%M%SZ'
S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/'
UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD'

# Query parameters a client may add to rest requests that are not members.
EXTRA_REST_QUERY = {'x-id'}

# Key of a handler's output dict that sets the HTTP status when the model has
# no statusCode member for it (S3's 206 Partial Content).
HTTP_STATUS = '$status'


# ---------------------------------------------------------------------------
# Utilities
# ---------------------------------------------------------------------------

def iso8601(ts, millis=False):
    """Format epoch seconds as an ISO 8601 UTC time, e.g. 2026-11-27T10:00:00Z."""
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    if millis:
        return dt.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (dt.microsecond // 1000)
    return dt.strftime('%Y-%m-%dT%H:%M:%SZ')


def rfc822(ts):
    """Format epoch seconds as an HTTP date, e.g. Fri, 27 Nov 2026 10:00:00 GMT."""
    return email.utils.formatdate(ts, usegmt=True)


def parse_time_text(text):
    """Parse a timestamp given as epoch seconds, ISO 8601 or an HTTP date.

    Returns epoch seconds (float) or None when the text is none of them."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=datetime.timezone.utc)
        return dt.timestamp()
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def random_text(alphabet, length):
    """Random string of LENGTH characters from ALPHABET (cryptographic source)."""
    return ''.join(secrets.choice(alphabet) for _ in range(length))


def describe(value):
    """Short description of a parsed value for error messages."""
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'boolean %s' % ('true' if value else 'false')
    if isinstance(value, (int, float)):
        return 'number %r' % value
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + '...'
        return 'string %s' % json.dumps(shown)
    if isinstance(value, (bytes, bytearray)):
        return 'blob of %d bytes' % len(value)
    if isinstance(value, dict):
        return 'object'
    if isinstance(value, list):
        return 'array'
    return type(value).__name__


def jsonable(value):
    """Copy of a parsed value that json.dumps accepts (bytes become text)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        if len(value) <= RECORD_BLOB_LIMIT:
            try:
                return bytes(value).decode('utf-8')
            except UnicodeDecodeError:
                return {'base64': base64.b64encode(value).decode()}
        return {'bytes': len(value), 'sha256': hashlib.sha256(value).hexdigest()}
    return value


def join_path(path, name):
    """Member path used in messages: a.b[0].c"""
    return name if not path else '%s.%s' % (path, name)


def arn_parts(arn):
    """Split an ARN into its six parts, or return None if it is not one."""
    parts = arn.split(':', 5)
    if len(parts) != 6 or parts[0] != 'arn':
        return None
    return parts


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

class AwsError(Exception):
    """An error answered in the protocol's error format.

    code/message/status are what the client sees; extra adds elements to S3
    error documents; headers adds response headers (e.g. Retry-After)."""

    def __init__(self, code, message, status=400, extra=None, headers=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra or {}
        self.headers = headers or []


class Violation(AwsError):
    """An AwsError caused by a client bug: recorded in /_fake/violations.

    kind is one of: unsigned, signature, protocol, model, unsupported,
    fake-bug."""

    def __init__(self, kind, code, message, status=400, extra=None):
        super().__init__(code, message, status, extra)
        self.kind = kind


class DropConnection(Exception):
    """Close the client's connection without any answer ('drop' and
    'drop-after' faults)."""


class ConfigError(Exception):
    """A bad /_fake/configure document; answered 400 by the control API."""


# Error codes by category and protocol family (json, rest-json, query, s3).
# (code, HTTP status) pairs; the family of a service comes from its model.
ERROR_CODES = {
    'unsigned': {
        'json': ('MissingAuthenticationTokenException', 403),
        'rest-json': ('MissingAuthenticationTokenException', 403),
        'query': ('MissingAuthenticationToken', 403),
        's3': ('AccessDenied', 403)},
    'malformed-auth': {
        'json': ('IncompleteSignatureException', 403),
        'rest-json': ('IncompleteSignatureException', 403),
        'query': ('IncompleteSignature', 403),
        's3': ('AuthorizationHeaderMalformed', 403)},
    'signature': {
        'json': ('InvalidSignatureException', 403),
        'rest-json': ('InvalidSignatureException', 403),
        'query': ('SignatureDoesNotMatch', 403),
        's3': ('SignatureDoesNotMatch', 403)},
    'time-skew': {
        'json': ('InvalidSignatureException', 403),
        'rest-json': ('InvalidSignatureException', 403),
        'query': ('SignatureDoesNotMatch', 403),
        's3': ('RequestTimeTooSkewed', 403)},
    'unknown-key': {
        'json': ('UnrecognizedClientException', 403),
        'rest-json': ('UnrecognizedClientException', 403),
        'query': ('InvalidClientTokenId', 403),
        's3': ('InvalidAccessKeyId', 403)},
    'bad-token': {
        'json': ('UnrecognizedClientException', 403),
        'rest-json': ('UnrecognizedClientException', 403),
        'query': ('InvalidClientTokenId', 403),
        's3': ('InvalidToken', 400)},
    'expired-token': {
        'json': ('ExpiredTokenException', 403),
        'rest-json': ('ExpiredTokenException', 403),
        'query': ('ExpiredToken', 403),
        's3': ('ExpiredToken', 400)},
    'validation': {
        'json': ('ValidationException', 400),
        'rest-json': ('ValidationException', 400),
        'query': ('ValidationError', 400),
        's3': ('InvalidArgument', 400)},
    'serialization': {
        'json': ('SerializationException', 400),
        'rest-json': ('SerializationException', 400),
        'query': ('MalformedQueryString', 400),
        's3': ('MalformedXML', 400)},
    'unknown-operation': {
        'json': ('UnknownOperationException', 400),
        'rest-json': ('UnknownOperationException', 404),
        'query': ('InvalidAction', 400),
        's3': ('MethodNotAllowed', 405)},
    'not-implemented': {
        'json': ('UnknownOperationException', 501),
        'rest-json': ('UnknownOperationException', 501),
        'query': ('InvalidAction', 501),
        's3': ('NotImplemented', 501)},
    'throttle': {
        'json': ('ThrottlingException', 400),
        'rest-json': ('TooManyRequestsException', 429),
        'query': ('Throttling', 400),
        's3': ('SlowDown', 503)},
    'internal': {
        'json': ('InternalFailure', 500),
        'rest-json': ('ServiceException', 500),
        'query': ('InternalFailure', 500),
        's3': ('InternalError', 500)},
    'unavailable': {
        'json': ('ServiceUnavailableException', 503),
        'rest-json': ('ServiceException', 503),
        'query': ('ServiceUnavailable', 503),
        's3': ('ServiceUnavailable', 503)},
}


def family_of(protocol):
    """Protocol family used by ERROR_CODES: rest-xml is only S3 here."""
    return 's3' if protocol == 'rest-xml' else protocol


def category_error(category, protocol, message, kind=None, extra=None):
    """Build the AwsError (or Violation when KIND is given) of a category."""
    code, status = ERROR_CODES[category][family_of(protocol)]
    if kind:
        return Violation(kind, code, message, status, extra)
    return AwsError(code, message, status, extra)


# ---------------------------------------------------------------------------
# Service models and rest routing
# ---------------------------------------------------------------------------

class RestRoute:
    """One rest operation's requestUri as a matcher.

    '/2015-03-31/functions/{FunctionName}/invocations' matches a raw path and
    yields its labels, percent-decoded; literal query keys of the requestUri
    ('?list-type=2', '?acl') and required header members (CopyObject's
    x-amz-copy-source) must be present in the request.  Routes are tried
    most specific first (score)."""

    def __init__(self, operation):
        self.operation = operation
        uri = operation.http['requestUri']
        path, _, query = uri.partition('?')
        self.literal_query = dict(parse_qsl(query, keep_blank_values=True))
        self.labels = []
        regex = []
        literal_chars = 0
        for piece in re.split(r'(\{[^}]+\})', path):
            if piece.startswith('{'):
                name = piece[1:-1]
                greedy = name.endswith('+')
                name = name.rstrip('+')
                self.labels.append(name)
                group = 'g%d' % (len(self.labels) - 1)
                regex.append('(?P<%s>%s)' % (group, '.+' if greedy else '[^/]+'))
            else:
                literal_chars += len(piece)
                regex.append(re.escape(piece))
        pattern = ''.join(regex)
        if not pattern.endswith('/'):
            pattern += '/?'
        self.regex = re.compile('^' + pattern + '$')
        shape = operation.input_shape
        self.required_headers = [
            shape.members[name].serialization.get('name', name).lower()
            for name in (shape.required_members if shape is not None else [])
            if shape.members[name].serialization.get('location') == 'header']
        self.score = (len(self.literal_query), len(self.required_headers), literal_chars)

    def match(self, method, raw_path, query, header_names):
        """Labels dict if METHOD/RAW_PATH/QUERY (decoded multi-dict) match."""
        if method != self.operation.http['method']:
            return None
        if any(name not in header_names for name in self.required_headers):
            return None
        for key, value in self.literal_query.items():
            if key not in query or (value and query[key] != [value]):
                return None
        m = self.regex.match(raw_path)
        if not m:
            return None
        return {name: unquote(m.group('g%d' % i)) for i, name in enumerate(self.labels)}


# Members AWS added to the APIs after botocore 1.29 (Debian's python3-botocore
# is 1.29.27), overlaid on the loaded models so the fake checks them exactly
# like model members (required, types, lengths, enums, patterns, unknown
# members) and records them in the call params.  A member is added only when
# the loaded model lacks it, and a shape only when the model has no shape of
# that name: a newer botocore is used as is.
#
# Source: the AWS API reference, CodePipeline StartPipelineExecution --
# "variables" (pipeline-level variables, added to the API in 2023) and
# "sourceRevisions" (source revision overrides, added in 2024); both absent
# from botocore 1.29.  ActionName and Revision are already in 1.29 with these
# constraints; they are listed so the overlay is complete on its own.
MODEL_OVERLAY = {
    'codepipeline': {
        'members': {
            'StartPipelineExecutionInput': {
                'variables': {'shape': 'PipelineVariableList'},
                'sourceRevisions': {'shape': 'SourceRevisionOverrideList'},
            },
        },
        'shapes': {
            'PipelineVariableList': {'type': 'list', 'member': {'shape': 'PipelineVariable'},
                                     'min': 1, 'max': 50},
            'PipelineVariable': {'type': 'structure', 'required': ['name', 'value'], 'members': {
                'name': {'shape': 'PipelineVariableName'},
                'value': {'shape': 'PipelineVariableValue'}}},
            'PipelineVariableName': {'type': 'string', 'min': 1, 'max': 128, 'pattern': '[A-Za-z0-9@\\-_]+'},
            'PipelineVariableValue': {'type': 'string', 'min': 1, 'max': 1000, 'pattern': '.*'},
            # The API reference says "Minimum number of 0 items" here (not 1).
            'SourceRevisionOverrideList': {'type': 'list', 'member': {'shape': 'SourceRevisionOverride'},
                                           'min': 0, 'max': 50},
            'SourceRevisionOverride': {
                'type': 'structure', 'required': ['actionName', 'revisionType', 'revisionValue'],
                'members': {'actionName': {'shape': 'ActionName'},
                            'revisionType': {'shape': 'SourceRevisionType'},
                            'revisionValue': {'shape': 'Revision'}}},
            'SourceRevisionType': {'type': 'string', 'enum': [
                'COMMIT_ID', 'IMAGE_DIGEST', 'S3_OBJECT_VERSION_ID', 'S3_OBJECT_KEY']},
            'ActionName': {'type': 'string', 'min': 1, 'max': 100, 'pattern': '[A-Za-z0-9.@\\-_]+'},
            'Revision': {'type': 'string', 'min': 1, 'max': 1500},
        },
    },
}


def apply_model_overlay(service, description):
    """Copy of the service DESCRIPTION (botocore's service-2 JSON) with the
    MODEL_OVERLAY members it lacks, and the names of the members added
    ('StartPipelineExecutionInput.variables')."""
    overlay = MODEL_OVERLAY.get(service)
    if not overlay:
        return description, []
    description = copy.deepcopy(description)
    shapes = description['shapes']
    added = []
    for shape_name, members in overlay['members'].items():
        present = shapes[shape_name]['members']
        for member, ref in members.items():
            if member not in present:
                present[member] = dict(ref)
                added.append('%s.%s' % (shape_name, member))
    if added:
        for name, shape in overlay['shapes'].items():
            shapes.setdefault(name, copy.deepcopy(shape))
    return description, added


class ServiceCatalog:
    """The botocore service models of the services served, loaded once
    (with MODEL_OVERLAY applied).

    Models are read-only after construction, so threads share them freely."""

    def __init__(self, names=SERVICES):
        session = botocore.session.get_session()
        self.models = {}
        self.overlaid = []          # 'codepipeline.StartPipelineExecutionInput.variables', ...
        for name in names:
            description, added = apply_model_overlay(name, session.get_service_data(name))
            self.models[name] = ServiceModel(description, service_name=name)
            self.overlaid += ['%s.%s' % (name, member) for member in added]
        self.routes = {}
        for name, model in self.models.items():
            if model.protocol in ('rest-json', 'rest-xml'):
                routes = [RestRoute(model.operation_model(op)) for op in model.operation_names]
                routes.sort(key=lambda r: r.score, reverse=True)
                self.routes[name] = routes

    def model(self, service):
        """Service model of SERVICE, or None when the fake does not serve it."""
        return self.models.get(service)

    def route(self, service, method, raw_path, query, header_names):
        """(route, labels) of the best matching rest route, or None.

        HEADER_NAMES is the set of lowercase header names of the request."""
        for route in self.routes.get(service, ()):
            labels = route.match(method, raw_path, query, header_names)
            if labels is not None:
                return route, labels
        return None


# ---------------------------------------------------------------------------
# Shape checking: parsed values against botocore shapes
# ---------------------------------------------------------------------------
#
# Parsed values use Python types: structure -> dict, list -> list, map ->
# dict, string -> str, integer/long -> int, float/double -> int or float,
# boolean -> bool, blob -> bytes, timestamp -> epoch seconds (float).  The
# protocol parsers convert wire forms (base64, ISO dates, 'true') into these
# and report conversion problems themselves, leaving a REPORTED marker.

class _Reported:
    """Marker for a value whose problem the parser already reported."""

    def __repr__(self):
        return '<reported>'


REPORTED = _Reported()


def check_shape(value, shape, path, problems):
    """Append to PROBLEMS a message for every way VALUE breaks SHAPE.

    Checks types, required and unknown structure members, enums, string
    patterns, string and blob lengths, list and map sizes, and numeric
    ranges.  PATH names VALUE in the messages."""
    if value is REPORTED:
        return
    checker = _SHAPE_CHECKERS.get(shape.type_name)
    if checker is not None:
        checker(value, shape, path or '(input)', problems)


def _check_structure(value, shape, path, problems):
    if not isinstance(value, dict):
        problems.append('%s: expected an object (%s), got %s' % (path, shape.name, describe(value)))
        return
    members = shape.members
    for name in value:
        if name not in members:
            hint = difflib.get_close_matches(name, list(members), n=1)
            problems.append('%s: unknown member "%s" in %s%s; known members: %s' % (
                path, name, shape.name,
                ' (did you mean "%s"?)' % hint[0] if hint else '',
                ', '.join(members)))
    for name in shape.required_members:
        if value.get(name) is None:
            problems.append('%s: missing required member "%s" of %s' % (path, name, shape.name))
    for name, member_value in value.items():
        if name in members and member_value is not None:
            check_shape(member_value, members[name],
                        join_path('' if path == '(input)' else path, name), problems)


def _check_size(count, shape, path, unit, problems):
    low, high = shape.metadata.get('min'), shape.metadata.get('max')
    if low is not None and count < low:
        problems.append('%s: %s %d is below the minimum %d of %s' % (path, unit, count, low, shape.name))
    if high is not None and count > high:
        problems.append('%s: %s %d is above the maximum %d of %s' % (path, unit, count, high, shape.name))


def _check_list(value, shape, path, problems):
    if not isinstance(value, list):
        problems.append('%s: expected an array (%s), got %s' % (path, shape.name, describe(value)))
        return
    _check_size(len(value), shape, path, 'item count', problems)
    for i, item in enumerate(value):
        check_shape(item, shape.member, '%s[%d]' % (path, i), problems)


def _check_map(value, shape, path, problems):
    if not isinstance(value, dict):
        problems.append('%s: expected a map (%s), got %s' % (path, shape.name, describe(value)))
        return
    _check_size(len(value), shape, path, 'entry count', problems)
    for key, item in value.items():
        check_shape(key, shape.key, '%s key %s' % (path, json.dumps(key)), problems)
        check_shape(item, shape.value, '%s[%s]' % (path, json.dumps(key)), problems)


def _check_string(value, shape, path, problems):
    if not isinstance(value, str):
        problems.append('%s: expected a string (%s), got %s' % (path, shape.name, describe(value)))
        return
    enum = shape.metadata.get('enum')
    if enum and value not in enum:
        problems.append('%s: %s is not one of %s (%s)' % (
            path, json.dumps(value), ', '.join(enum), shape.name))
    _check_size(len(value), shape, path, 'length', problems)
    pattern = shape.metadata.get('pattern')
    regex = model_pattern(pattern) if pattern else None
    if regex is not None and not regex.search(value):
        problems.append('%s: %s does not match the pattern %s of %s' % (
            path, json.dumps(value), pattern, shape.name))


@functools.lru_cache(maxsize=None)
def model_pattern(pattern):
    """Compiled model PATTERN, or None when Python's re cannot read it.

    Model patterns are Java/ECMA regexes searched unanchored (Smithy rules);
    the few Python cannot compile (\\p{L} classes) go unchecked."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            return re.compile(pattern)
    except re.error:
        return None


def _check_integer(value, shape, path, problems):
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append('%s: expected an integer (%s), got %s' % (path, shape.name, describe(value)))
        return
    _check_range(value, shape, path, problems)


def _check_float(value, shape, path, problems):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append('%s: expected a number (%s), got %s' % (path, shape.name, describe(value)))
        return
    _check_range(value, shape, path, problems)


def _check_range(value, shape, path, problems):
    low, high = shape.metadata.get('min'), shape.metadata.get('max')
    if low is not None and value < low:
        problems.append('%s: %r is below the minimum %r of %s' % (path, value, low, shape.name))
    if high is not None and value > high:
        problems.append('%s: %r is above the maximum %r of %s' % (path, value, high, shape.name))


def _check_boolean(value, shape, path, problems):
    if not isinstance(value, bool):
        problems.append('%s: expected a boolean (%s), got %s' % (path, shape.name, describe(value)))


def _check_blob(value, shape, path, problems):
    if not isinstance(value, (bytes, bytearray)):
        problems.append('%s: expected a blob (%s), got %s' % (path, shape.name, describe(value)))
        return
    _check_size(len(value), shape, path, 'size', problems)


def _check_timestamp(value, shape, path, problems):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append('%s: expected a timestamp (%s), got %s' % (path, shape.name, describe(value)))


_SHAPE_CHECKERS = {
    'structure': _check_structure,
    'list': _check_list,
    'map': _check_map,
    'string': _check_string,
    'integer': _check_integer,
    'long': _check_integer,
    'float': _check_float,
    'double': _check_float,
    'boolean': _check_boolean,
    'blob': _check_blob,
    'timestamp': _check_timestamp,
}


# ---------------------------------------------------------------------------
# Request parsing per protocol
# ---------------------------------------------------------------------------

class Request:
    """One received HTTP request: raw path and query as sent, headers in order."""

    def __init__(self, method, target, headers, body, client):
        self.method = method
        self.raw_path, _, self.raw_query = target.partition('?')
        self.headers = headers          # list of (name, value), as received
        self.body = body                # bytes
        self.client = client            # "ip:port" of the peer

    def header(self, name):
        """First value of header NAME (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def header_values(self, name):
        """All values of header NAME, in order."""
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]

    def query_pairs(self):
        """Query as (name, value) pairs, percent-decoded ('+' stays '+')."""
        pairs = []
        if self.raw_query:
            for piece in self.raw_query.split('&'):
                key, _, value = piece.partition('=')
                pairs.append((unquote(key), unquote(value)))
        return pairs

    def query_multi(self):
        """Query as {name: [values]}."""
        multi = collections.OrderedDict()
        for key, value in self.query_pairs():
            multi.setdefault(key, []).append(value)
        return multi


def from_json_wire(value, shape, path, problems):
    """Convert a JSON-decoded VALUE of SHAPE to parsed form (blobs, timestamps).

    Members whose value is null are dropped (AWS treats them as absent).
    Type mismatches are left for check_shape to report."""
    kind = shape.type_name
    if kind == 'structure' and isinstance(value, dict):
        out = {}
        for name, item in value.items():
            if item is None:
                continue
            member = shape.members.get(name)
            out[name] = from_json_wire(item, member, join_path(path, name), problems) if member else item
        return out
    if kind == 'list' and isinstance(value, list):
        return [from_json_wire(v, shape.member, '%s[%d]' % (path, i), problems)
                for i, v in enumerate(value)]
    if kind == 'map' and isinstance(value, dict):
        return {k: from_json_wire(v, shape.value, '%s[%s]' % (path, json.dumps(k)), problems)
                for k, v in value.items()}
    if kind == 'blob' and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            problems.append('%s: blob is not valid base64: %s' % (path, describe(value)))
            return REPORTED
    if kind == 'timestamp':
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and shape.serialization.get('timestampFormat') == 'iso8601':
            parsed = parse_time_text(value)
            if parsed is None:
                problems.append('%s: not an ISO 8601 timestamp: %s' % (path, describe(value)))
                return REPORTED
            return parsed
    return value


def from_text_wire(text, shape, path, problems, where):
    """Convert TEXT (from a query, URI label or header) to SHAPE's parsed type."""
    kind = shape.type_name
    if kind == 'string':
        return text
    if kind in ('integer', 'long'):
        if re.fullmatch(r'-?[0-9]+', text.strip()):
            return int(text)
        problems.append('%s (%s): expected an integer, got %s' % (path, where, describe(text)))
        return REPORTED
    if kind in ('float', 'double'):
        try:
            return float(text)
        except ValueError:
            problems.append('%s (%s): expected a number, got %s' % (path, where, describe(text)))
            return REPORTED
    if kind == 'boolean':
        if text in ('true', 'false'):
            return text == 'true'
        problems.append('%s (%s): expected true or false, got %s' % (path, where, describe(text)))
        return REPORTED
    if kind == 'timestamp':
        parsed = parse_time_text(text)
        if parsed is None:
            problems.append('%s (%s): not a timestamp: %s' % (path, where, describe(text)))
            return REPORTED
        return parsed
    if kind == 'blob':
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            problems.append('%s (%s): blob is not valid base64: %s' % (path, where, describe(text)))
            return REPORTED
    problems.append('%s (%s): a %s cannot be sent here' % (path, where, kind))
    return REPORTED


def json_object_no_duplicates(pairs):
    """object_pairs_hook refusing duplicate keys (ambiguous for AWS)."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError('duplicate member "%s" in JSON object' % key)
        out[key] = value
    return out


def parse_json_document(body, protocol):
    """Decode BODY as one JSON object; a Violation if it is not one."""
    try:
        doc = json.loads(body.decode('utf-8'), object_pairs_hook=json_object_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise category_error('serialization', protocol,
                             'request body is not valid JSON: %s' % exc, 'protocol')
    if not isinstance(doc, dict):
        raise category_error('serialization', protocol,
                             'request body must be a JSON object, got %s' % describe(doc), 'protocol')
    return doc


class Protocol:
    """Interface of a protocol: parse a request, write answers and errors.

    parse(req, model, catalog) -> (operation model, params, problems) where
    problems are conversion problems found while parsing (shape checking
    comes after); it raises a Violation when the request cannot be parsed at
    all.
    answer(operation, output, request_id) -> Response.
    error(err, request_id, model) -> Response."""

    name = ''


class JsonProtocol(Protocol):
    """awsJson1_1: POST /, X-Amz-Target: Prefix.Operation, JSON body both ways."""

    name = 'json'
    CONTENT_TYPE = 'application/x-amz-json-1.1'

    def parse(self, req, model, catalog):
        prefix = model.metadata['targetPrefix']
        target = req.header('X-Amz-Target')
        if not target:
            raise category_error('unknown-operation', self.name,
                                 'missing X-Amz-Target header (expected %s.<Operation>)' % prefix,
                                 'protocol')
        target_prefix, _, op_name = target.partition('.')
        if target_prefix != prefix:
            raise category_error('unknown-operation', self.name,
                                 'X-Amz-Target "%s" does not belong to %s (expected %s.<Operation>)'
                                 % (target, model.service_name, prefix), 'protocol')
        if op_name not in model.operation_names:
            hint = difflib.get_close_matches(op_name, model.operation_names, n=1)
            raise category_error('unknown-operation', self.name,
                                 'unknown operation "%s" in X-Amz-Target%s' % (
                                     op_name, ' (did you mean "%s"?)' % hint[0] if hint else ''),
                                 'protocol')
        if req.method != 'POST' or req.raw_path != '/':
            raise category_error('unknown-operation', self.name,
                                 '%s %s: json-1.1 requests are POST /' % (req.method, req.raw_path),
                                 'protocol')
        content_type = req.header('Content-Type')
        if content_type != self.CONTENT_TYPE:
            raise category_error('serialization', self.name,
                                 'Content-Type must be %s, got %s' % (
                                     self.CONTENT_TYPE, json.dumps(content_type)), 'protocol')
        operation = model.operation_model(op_name)
        doc = parse_json_document(req.body, self.name)
        problems = []
        params = from_json_wire(doc, operation.input_shape, '', problems)
        return operation, params, problems

    def answer(self, operation, output, request_id):
        body = to_json_wire(output, operation.output_shape) if operation.output_shape else {}
        return Response(200, json.dumps(body).encode(), [
            ('Content-Type', self.CONTENT_TYPE), ('x-amzn-RequestId', request_id)])

    def error(self, err, request_id, model):
        body = {'__type': err.code, 'message': err.message}
        return Response(err.status, json.dumps(body).encode(), [
            ('Content-Type', self.CONTENT_TYPE), ('x-amzn-RequestId', request_id),
            ('x-amzn-ErrorType', err.code)] + err.headers)


class QueryProtocol(Protocol):
    """AWS query: form-encoded Action/Version/params in, XML out (STS, SNS)."""

    name = 'query'
    CONTENT_TYPE = 'application/x-www-form-urlencoded'

    def parse(self, req, model, catalog):
        if req.raw_path != '/':
            raise category_error('unknown-operation', self.name,
                                 'query protocol requests go to /, got %s' % req.raw_path, 'protocol')
        if req.method == 'POST':
            content_type = (req.header('Content-Type') or '').split(';')[0].strip().lower()
            if content_type != self.CONTENT_TYPE:
                raise category_error('serialization', self.name,
                                     'Content-Type must be %s, got %s' % (
                                         self.CONTENT_TYPE, json.dumps(req.header('Content-Type'))),
                                     'protocol')
            text = form_text(req)
            if req.raw_query:
                raise category_error('serialization', self.name,
                                     'query POST with parameters in the URL too: %s' % req.raw_query,
                                     'protocol')
        elif req.method == 'GET':
            text = req.raw_query
        else:
            raise category_error('unknown-operation', self.name,
                                 'query protocol requests are POST (or GET), got %s' % req.method,
                                 'protocol')
        flat = collections.OrderedDict()
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
        except ValueError as exc:
            raise category_error('serialization', self.name, 'bad form body: %s' % exc, 'protocol')
        for key, value in pairs:
            if key in flat:
                raise category_error('serialization', self.name,
                                     'parameter "%s" given twice' % key, 'protocol')
            flat[key] = value
        action = flat.pop('Action', None)
        version = flat.pop('Version', None)
        if action not in model.operation_names:
            raise category_error('unknown-operation', self.name,
                                 'unknown or missing Action %s' % json.dumps(action), 'protocol')
        if version != model.api_version:
            raise category_error('validation', self.name,
                                 'Version must be %s, got %s' % (model.api_version, json.dumps(version)),
                                 'protocol')
        operation = model.operation_model(action)
        problems = []
        consumed = set()
        params = {}
        if operation.input_shape is not None:
            params = self._structure(flat, operation.input_shape, '', '', consumed, problems)
        for key in flat:
            if key not in consumed:
                problems.append('unknown parameter "%s" for %s' % (key, action))
        return operation, params, problems

    @staticmethod
    def _present(flat, key):
        dotted = key + '.'
        return key in flat or any(k.startswith(dotted) for k in flat)

    def _value(self, flat, shape, key, path, consumed, problems):
        kind = shape.type_name
        if kind == 'structure':
            return self._structure(flat, shape, key, path, consumed, problems)
        if kind == 'list':
            return self._list(flat, shape, key, path, consumed, problems)
        if kind == 'map':
            return self._map(flat, shape, key, path, consumed, problems)
        consumed.add(key)
        return from_text_wire(flat[key], shape, path, problems, 'parameter ' + key)

    def _structure(self, flat, shape, prefix, path, consumed, problems):
        out = {}
        for name, member in shape.members.items():
            wire = member.serialization.get('name', name)
            key = '%s.%s' % (prefix, wire) if prefix else wire
            if self._present(flat, key):
                out[name] = self._value(flat, member, key, join_path(path, name), consumed, problems)
        return out

    def _list(self, flat, shape, key, path, consumed, problems):
        if flat.get(key) == '':
            consumed.add(key)
            return []
        if shape.serialization.get('flattened'):
            item_prefix = key
            member_name = shape.member.serialization.get('name')
            if member_name:
                item_prefix = '.'.join(key.split('.')[:-1] + [member_name])
        else:
            item_prefix = '%s.%s' % (key, shape.member.serialization.get('name', 'member'))
        items = []
        while self._present(flat, '%s.%d' % (item_prefix, len(items) + 1)):
            item_key = '%s.%d' % (item_prefix, len(items) + 1)
            items.append(self._value(flat, shape.member, item_key, '%s[%d]' % (path, len(items)),
                                     consumed, problems))
        return items

    def _map(self, flat, shape, key, path, consumed, problems):
        entry_prefix = key if shape.serialization.get('flattened') else key + '.entry'
        key_name = shape.key.serialization.get('name', 'key')
        value_name = shape.value.serialization.get('name', 'value')
        out = {}
        i = 1
        while self._present(flat, '%s.%d' % (entry_prefix, i)):
            k_key = '%s.%d.%s' % (entry_prefix, i, key_name)
            v_key = '%s.%d.%s' % (entry_prefix, i, value_name)
            if k_key not in flat:
                problems.append('%s: entry %d has no %s' % (path, i, k_key))
                break
            consumed.add(k_key)
            name = flat[k_key]
            if self._present(flat, v_key):
                out[name] = self._value(flat, shape.value, v_key, '%s[%s]' % (path, json.dumps(name)),
                                        consumed, problems)
            else:
                problems.append('%s: entry %d (%s) has no %s' % (path, i, json.dumps(name), v_key))
            i += 1
        return out

    def answer(self, operation, output, request_id):
        name = operation.name
        xmlns = operation.service_model.metadata.get('xmlNamespace', '')
        out = ['<%sResponse xmlns="%s">' % (name, xmlns)]
        shape = operation.output_shape
        if shape is not None:
            wrapper = shape.serialization.get('resultWrapper', name + 'Result')
            out.append('<%s>' % wrapper)
            xml_members(output, shape, out, iso8601)
            out.append('</%s>' % wrapper)
        out.append('<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>' % request_id)
        out.append('</%sResponse>' % name)
        return Response(200, ''.join(out).encode(), [
            ('Content-Type', 'text/xml'), ('x-amzn-RequestId', request_id)])

    def error(self, err, request_id, model):
        xmlns = model.metadata.get('xmlNamespace', '') if model else ''
        kind = 'Receiver' if err.status >= 500 else 'Sender'
        body = ('<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code>'
                '<Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>' % (
                    xmlns, kind, xml_escape(err.code), xml_escape(err.message), request_id))
        return Response(err.status, body.encode(), [
            ('Content-Type', 'text/xml'), ('x-amzn-RequestId', request_id)] + err.headers)


class RestProtocol(Protocol):
    """Shared parsing of rest-json and rest-xml: URI labels, query, headers, payload.

    Subclasses provide _parse_structure_payload and _parse_body_members."""

    def parse(self, req, model, catalog):
        query = req.query_multi()
        found = catalog.route(model.service_name, req.method, req.raw_path, query,
                              {k.lower() for k, _ in req.headers})
        if found is None:
            raise category_error('unknown-operation', self.name,
                                 'no %s operation matches %s %s' % (
                                     model.service_name, req.method, req.raw_path), 'protocol')
        route, labels = found
        operation = route.operation
        shape = operation.input_shape
        problems = []
        params = {}
        if shape is None:
            return operation, params, problems
        consumed = set(route.literal_query) | EXTRA_REST_QUERY
        payload_name = shape.serialization.get('payload')
        body_members = []
        for name, member in shape.members.items():
            location = member.serialization.get('location')
            wire = member.serialization.get('name', name)
            if location == 'uri':
                if wire in labels:
                    params[name] = from_text_wire(labels[wire], member, name, problems, 'URI label')
            elif location == 'querystring' and member.type_name != 'map':
                if wire in query:
                    consumed.add(wire)
                    params[name] = self._query_member(query[wire], member, name, wire, problems)
            elif location == 'header':
                value = req.header(wire)
                if value is not None:
                    params[name] = self._header_member(value, member, name, wire, problems)
            elif location == 'headers':
                prefix = wire.lower()
                prefixed = {k[len(prefix):]: v for k, v in req.headers if k.lower().startswith(prefix)}
                if prefixed:
                    params[name] = prefixed
            elif name == payload_name:
                self._parse_payload(req, member, name, params, problems)
            elif location is None:
                body_members.append(name)
        self._remaining_query(query, shape, consumed, params, problems, operation.name)
        if not payload_name:
            if body_members and req.body:
                self._parse_body_members(req, shape, body_members, params, problems)
            elif req.body:
                problems.append('%s takes no request body, got %d bytes' % (operation.name, len(req.body)))
        return operation, params, problems

    @staticmethod
    def _query_member(values, member, name, wire, problems):
        """Parsed value of a querystring member from its VALUES."""
        if member.type_name == 'list':
            return [from_text_wire(v, member.member, name, problems, 'query ' + wire) for v in values]
        if len(values) > 1:
            problems.append('%s: query parameter %s given %d times' % (name, wire, len(values)))
        return from_text_wire(values[0], member, name, problems, 'query ' + wire)

    @staticmethod
    def _header_member(value, member, name, wire, problems):
        """Parsed value of a header member (lists are comma-separated)."""
        if member.type_name == 'list':
            return [from_text_wire(v.strip(), member.member, name, problems, 'header ' + wire)
                    for v in value.split(',')]
        return from_text_wire(value, member, name, problems, 'header ' + wire)

    @staticmethod
    def _remaining_query(query, shape, consumed, params, problems, operation):
        """Give unconsumed query parameters to a querystring map member, if
        the shape has one; otherwise each is an unknown parameter."""
        rest = {k: v[0] for k, v in query.items() if k not in consumed}
        for name, member in shape.members.items():
            if member.serialization.get('location') == 'querystring' and member.type_name == 'map':
                if rest:
                    params[name] = rest
                return
        for key in rest:
            problems.append('unknown query parameter "%s" for %s' % (key, operation))

    def _parse_payload(self, req, member, name, params, problems):
        if member.type_name == 'blob':
            if req.body:
                params[name] = req.body
        elif member.type_name == 'string':
            if req.body:
                try:
                    params[name] = req.body.decode('utf-8')
                except UnicodeDecodeError:
                    problems.append('%s: payload is not UTF-8' % name)
        elif req.body:
            params[name] = self._parse_structure_payload(req, member, name, problems)


class RestJsonProtocol(RestProtocol):
    """rest-json (Lambda): HTTP binding from the model, JSON bodies."""

    name = 'rest-json'

    def _parse_structure_payload(self, req, member, name, problems):
        doc = parse_json_document(req.body, self.name)
        return from_json_wire(doc, member, name, problems)

    def _parse_body_members(self, req, shape, body_members, params, problems):
        doc = parse_json_document(req.body, self.name)
        for key, value in doc.items():
            if key not in body_members:
                problems.append('unknown body member "%s"; body members: %s' % (key, ', '.join(body_members)))
            elif value is not None:
                params[key] = from_json_wire(value, shape.members[key], key, problems)

    def answer(self, operation, output, request_id):
        status, headers, body_values, payload = split_rest_output(operation, output)
        shape = operation.output_shape
        if payload is not None:
            member = shape.members[shape.serialization['payload']]
            if member.type_name == 'structure':
                body = json.dumps(to_json_wire(payload, member)).encode()
            else:
                body = payload if isinstance(payload, bytes) else payload.encode()
        elif body_values or shape is not None:
            body = json.dumps(to_json_wire(body_values, shape)).encode()
        else:
            body = b''
        headers.append(('x-amzn-RequestId', request_id))
        if not any(k.lower() == 'content-type' for k, _ in headers):
            headers.append(('Content-Type', 'application/json'))
        return Response(status, body, headers)

    def error(self, err, request_id, model):
        body = {'Type': 'Service' if err.status >= 500 else 'User', 'Message': err.message}
        return Response(err.status, json.dumps(body).encode(), [
            ('Content-Type', 'application/json'), ('x-amzn-RequestId', request_id),
            ('x-amzn-ErrorType', err.code)] + err.headers)


class RestXmlProtocol(RestProtocol):
    """rest-xml (S3, path-style only): HTTP binding from the model, XML bodies."""

    name = 'rest-xml'
    # Root element of operations whose output is an XML document.
    ROOTS = {'ListObjectsV2': 'ListBucketResult'}

    def _parse_structure_payload(self, req, member, name, problems):
        raise category_error('not-implemented', self.name,
                             'the fake does not parse XML request bodies (%s)' % name, 'unsupported')

    def _parse_body_members(self, req, shape, body_members, params, problems):
        raise category_error('not-implemented', self.name,
                             'the fake does not parse XML request bodies (%s)' % shape.name, 'unsupported')

    def answer(self, operation, output, request_id):
        status, headers, body_values, payload = split_rest_output(operation, output)
        shape = operation.output_shape
        if payload is not None:
            body = payload if isinstance(payload, bytes) else payload.encode()
        elif body_values:
            root = self.ROOTS.get(operation.name, shape.name)
            out = ['<?xml version="1.0" encoding="UTF-8"?>', '<%s xmlns="%s">' % (root, S3_XMLNS)]
            xml_members(body_values, shape, out, lambda ts: iso8601(ts, millis=True))
            out.append('</%s>' % root)
            body = ''.join(out).encode()
            headers.append(('Content-Type', 'application/xml'))
        else:
            body = b''
        headers += [('x-amz-request-id', request_id), ('x-amz-id-2', request_id)]
        return Response(status, body, headers)

    def error(self, err, request_id, model):
        extra = ''.join('<%s>%s</%s>' % (k, xml_escape(str(v)), k) for k, v in err.extra.items())
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
                '%s<RequestId>%s</RequestId><HostId>%s</HostId></Error>' % (
                    xml_escape(err.code), xml_escape(err.message), extra, request_id, request_id))
        return Response(err.status, body.encode(), [
            ('Content-Type', 'application/xml'), ('x-amz-request-id', request_id),
            ('x-amz-id-2', request_id)] + err.headers)


PROTOCOLS = {
    'json': JsonProtocol(),
    'query': QueryProtocol(),
    'rest-json': RestJsonProtocol(),
    'rest-xml': RestXmlProtocol(),
}


def form_text(req):
    """The form parameters of a query-protocol request (body, or URL for GET)."""
    return req.body.decode('utf-8', 'replace') if req.method == 'POST' else req.raw_query


def guess_service(req, catalog):
    """(service or None, protocol) of a request without a usable credential
    scope, from its shape; only used to answer and record it properly."""
    target = req.header('X-Amz-Target')
    if target is not None:
        prefix = target.partition('.')[0]
        for name, model in catalog.models.items():
            if model.metadata.get('targetPrefix') == prefix:
                return name, 'json'
        return None, 'json'
    if req.raw_path.startswith('/2015-03-31/'):
        return 'lambda', 'rest-json'
    form = dict(parse_qsl(form_text(req)))
    if 'Action' in form:
        for name, model in catalog.models.items():
            if model.protocol == 'query' and model.api_version == form.get('Version'):
                return name, 'query'
        return None, 'query'
    return 's3', 'rest-xml'


def peek_operation(req, model, catalog):
    """Best-effort name of the operation a refused request was for (records only)."""
    if model.protocol == 'json':
        name = (req.header('X-Amz-Target') or '').partition('.')[2]
    elif model.protocol == 'query':
        name = dict(parse_qsl(form_text(req))).get('Action')
    else:
        found = catalog.route(model.service_name, req.method, req.raw_path, req.query_multi(),
                              {k.lower() for k, _ in req.headers})
        name = found[0].operation.name if found else None
    return name if name in model.operation_names else None


# ---------------------------------------------------------------------------
# Response writing per protocol
# ---------------------------------------------------------------------------

class Response:
    """An HTTP answer: status, headers (list of pairs), body bytes."""

    def __init__(self, status, body=b'', headers=None):
        self.status = status
        self.body = body
        self.headers = headers or []


def xml_escape(text):
    return (text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
            .replace('"', '&quot;'))


def to_json_wire(value, shape):
    """Parsed VALUE of SHAPE to its JSON form (base64 blobs, epoch timestamps)."""
    kind = shape.type_name
    if kind == 'structure':
        return {k: to_json_wire(v, shape.members[k]) for k, v in value.items() if v is not None}
    if kind == 'list':
        return [to_json_wire(v, shape.member) for v in value]
    if kind == 'map':
        return {k: to_json_wire(v, shape.value) for k, v in value.items()}
    if kind == 'blob':
        return base64.b64encode(value).decode()
    if kind == 'timestamp':
        if shape.serialization.get('timestampFormat') == 'iso8601':
            return iso8601(value)
        return round(float(value), 3)
    return value


def xml_members(value, shape, out, time_format):
    """Append the body members of structure VALUE as XML elements to OUT."""
    for name, item in value.items():
        member = shape.members[name]
        if item is None or member.serialization.get('location'):
            continue
        xml_value(member.serialization.get('name', name), item, member, out, time_format)


def xml_value(tag, value, shape, out, time_format):
    """Append VALUE of SHAPE as element TAG (lists and maps as AWS nests them)."""
    kind = shape.type_name
    if kind == 'structure':
        out.append('<%s>' % tag)
        xml_members(value, shape, out, time_format)
        out.append('</%s>' % tag)
    elif kind == 'list':
        member_tag = shape.member.serialization.get('name')
        if shape.serialization.get('flattened'):
            for item in value:
                xml_value(member_tag or tag, item, shape.member, out, time_format)
        else:
            out.append('<%s>' % tag)
            for item in value:
                xml_value(member_tag or 'member', item, shape.member, out, time_format)
            out.append('</%s>' % tag)
    elif kind == 'map':
        key_tag = shape.key.serialization.get('name', 'key')
        value_tag = shape.value.serialization.get('name', 'value')
        out.append('<%s>' % tag)
        for k, v in value.items():
            out.append('<entry>')
            xml_value(key_tag, k, shape.key, out, time_format)
            xml_value(value_tag, v, shape.value, out, time_format)
            out.append('</entry>')
        out.append('</%s>' % tag)
    else:
        out.append('<%s>%s</%s>' % (tag, xml_escape(scalar_text(value, shape, time_format)), tag))


def scalar_text(value, shape, time_format):
    """Text form of a scalar for XML or headers."""
    kind = shape.type_name
    if kind == 'boolean':
        return 'true' if value else 'false'
    if kind == 'timestamp':
        fmt = shape.serialization.get('timestampFormat')
        if fmt == 'iso8601':
            return iso8601(value)
        if fmt == 'rfc822':
            return rfc822(value)
        if fmt == 'unixTimestamp':
            return str(int(value))
        return time_format(value)
    if kind == 'blob':
        return base64.b64encode(value).decode()
    return str(value)


def split_rest_output(operation, output):
    """Split a rest OUTPUT into (status, headers, body members, payload)."""
    status = operation.http.get('responseCode', 200)
    headers = []
    body_values = {}
    payload = None
    shape = operation.output_shape
    if shape is None:
        return status, headers, body_values, payload
    payload_name = shape.serialization.get('payload')
    for name, value in output.items():
        member = shape.members[name]
        location = member.serialization.get('location')
        wire = member.serialization.get('name', name)
        if value is None:
            continue
        if location == 'statusCode':
            status = value
        elif location == 'header':
            if member.type_name == 'list':
                headers.append((wire, ','.join(scalar_text(v, member.member, rfc822) for v in value)))
            else:
                headers.append((wire, scalar_text(value, member, rfc822)))
        elif location == 'headers':
            headers.extend((wire + k, v) for k, v in value.items())
        elif name == payload_name:
            payload = value
        else:
            body_values[name] = value
    return status, headers, body_values, payload


# ---------------------------------------------------------------------------
# Credentials and SigV4 verification
# ---------------------------------------------------------------------------

class Identity:
    """Who signed a request.  account is where its resources live."""

    def __init__(self, access_key, secret_key, account, arn, user_id,
                 token=None, expiration=None, assumed_role=None, session_name=None):
        self.access_key = access_key
        self.secret_key = secret_key
        self.account = account
        self.arn = arn
        self.user_id = user_id
        self.token = token                  # session token; None for long-term keys
        self.expiration = expiration        # epoch seconds; None for long-term keys
        self.assumed_role = assumed_role    # role ARN for temporary credentials
        self.session_name = session_name


class CredentialStore:
    """Long-term keys (static) and temporary credentials the fake issued."""

    def __init__(self):
        self.static = {}
        self.temporary = {}
        self.lock = threading.Lock()
        self.add_static(STATIC_ACCESS_KEY, STATIC_SECRET_KEY, STATIC_ACCOUNT, STATIC_USER_ARN)

    def add_static(self, access_key, secret_key, account, arn=None):
        """Accept ACCESS_KEY/SECRET_KEY for ACCOUNT from now on."""
        arn = arn or 'arn:aws:iam::%s:user/%s' % (account, access_key.lower())
        with self.lock:
            self.static[access_key] = Identity(access_key, secret_key, account, arn,
                                               'AIDA' + hashlib.sha1(access_key.encode()).hexdigest()[:17].upper())

    def issue(self, role_arn, session_name, seconds, now):
        """New temporary credentials for ROLE_ARN; the account is the role's."""
        parts = arn_parts(role_arn)
        account = parts[4] if parts else STATIC_ACCOUNT
        role_name = role_arn.rsplit('/', 1)[-1]
        role_id = 'AROA' + hashlib.sha1(role_arn.encode()).hexdigest()[:17].upper()
        ident = Identity(
            access_key='ASIA' + random_text(string.ascii_uppercase + string.digits, 16),
            secret_key=random_text(string.ascii_letters + string.digits + '/+', 40),
            account=account,
            arn='arn:aws:sts::%s:assumed-role/%s/%s' % (account, role_name, session_name),
            user_id='%s:%s' % (role_id, session_name),
            token='FQoGZXIvYXdzE' + base64.b64encode(secrets.token_bytes(240)).decode(),
            expiration=now + seconds,
            assumed_role=role_arn,
            session_name=session_name)
        with self.lock:
            self.temporary[ident.access_key] = ident
        return ident

    def lookup(self, access_key):
        with self.lock:
            return self.static.get(access_key) or self.temporary.get(access_key)

    def forget_temporary(self):
        with self.lock:
            self.temporary.clear()


class _ReceivedSigV4(SigV4Auth):
    """botocore's SigV4 signer, told which headers the client signed.

    botocore chooses headers itself when it signs; to verify we must use
    exactly the client's SignedHeaders, everything else is botocore's code."""

    def __init__(self, credentials, service, region, signed_names):
        super().__init__(credentials, service, region)
        self._signed_names = signed_names

    def headers_to_sign(self, request):
        chosen = HTTPHeaders()
        for name in self._signed_names:
            for value in request.headers.get_all(name, []):
                chosen[name] = value
        return chosen


class _ReceivedS3SigV4(_ReceivedSigV4, S3SigV4Auth):
    """As _ReceivedSigV4, with S3's rules (path not normalized)."""


AUTH_RE = re.compile(r'^AWS4-HMAC-SHA256\s+(.*)$')
SCOPE_RE = re.compile(r'^([^/]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request$')


class SigV4Verifier:
    """Checks the Authorization header of a request like AWS does."""

    def __init__(self, credentials):
        self.credentials = credentials

    def scope_of(self, req):
        """(service, region) from the credential scope, or None if unsigned/garbled."""
        auth = req.header('Authorization') or ''
        m = re.search(r'Credential=([^,\s]+)', auth)
        if not m:
            return None
        scope = SCOPE_RE.match(m.group(1))
        return (scope.group(4), scope.group(3)) if scope else None

    def verify(self, req, service, region, protocol, now):
        """Return the Identity that signed REQ, or raise a Violation.

        SERVICE/REGION come from the scope (see scope_of); PROTOCOL picks the
        error codes."""
        auth = req.header('Authorization')
        if auth is None:
            if 'X-Amz-Signature' in req.raw_query or 'X-Amz-Credential' in req.raw_query:
                raise category_error('malformed-auth', protocol,
                                     'presigned URLs are not supported by the fake', 'unsupported')
            raise category_error('unsigned', protocol,
                                 'Missing Authentication Token: the request has no Authorization header',
                                 'unsigned')
        m = AUTH_RE.match(auth)
        fields = {}
        if m:
            for part in m.group(1).split(','):
                key, _, value = part.strip().partition('=')
                fields[key] = value
        if not m or set(fields) != {'Credential', 'SignedHeaders', 'Signature'}:
            raise category_error('malformed-auth', protocol,
                                 'Authorization header must be "AWS4-HMAC-SHA256 Credential=..., '
                                 'SignedHeaders=..., Signature=...", got %s' % json.dumps(auth),
                                 'signature')
        scope = SCOPE_RE.match(fields['Credential'])
        if scope is None:
            raise category_error('malformed-auth', protocol,
                                 'Credential must be AKID/YYYYMMDD/region/service/aws4_request, got %s'
                                 % json.dumps(fields['Credential']), 'signature')
        access_key, scope_date = scope.group(1), scope.group(2)
        signed_names = fields['SignedHeaders'].split(';')
        amz_date = self._check_date(req, scope_date, signed_names, protocol, now)
        self._check_signed_headers(req, service, signed_names, protocol)
        ident = self.credentials.lookup(access_key)
        if ident is None:
            raise category_error('unknown-key', protocol,
                                 'The security token included in the request is invalid: unknown '
                                 'access key %s' % access_key, 'signature')
        self._check_token(req, ident, protocol, now)
        self._check_payload_hash(req, service, protocol)
        self._check_signature(req, ident, service, region, signed_names, amz_date,
                              fields['Signature'], protocol)
        return ident

    def _check_date(self, req, scope_date, signed_names, protocol, now):
        """The request time (basic ISO format) after checking skew and scope."""
        amz_date = req.header('X-Amz-Date')
        if amz_date is not None:
            if 'x-amz-date' not in signed_names:
                raise category_error('signature', protocol, 'X-Amz-Date is not signed', 'signature')
            try:
                when = datetime.datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(
                    tzinfo=datetime.timezone.utc).timestamp()
            except ValueError:
                raise category_error('malformed-auth', protocol,
                                     'X-Amz-Date %s is not in the form 20261127T100000Z'
                                     % json.dumps(amz_date), 'signature')
        else:
            date = req.header('Date')
            when = parse_time_text(date) if date else None
            if when is None or 'date' not in signed_names:
                raise category_error('malformed-auth', protocol,
                                     'the request needs a signed X-Amz-Date (or Date) header', 'signature')
            amz_date = time.strftime(SIGV4_TIMESTAMP, time.gmtime(when))
        if abs(now - when) > MAX_CLOCK_SKEW:
            raise category_error('time-skew', protocol,
                                 'Signature expired: %s is not within 15 minutes of the fake\'s time %s'
                                 % (amz_date, time.strftime(SIGV4_TIMESTAMP, time.gmtime(now))),
                                 'signature')
        if scope_date != amz_date[:8]:
            raise category_error('signature', protocol,
                                 'credential scope date %s does not match the request date %s'
                                 % (scope_date, amz_date), 'signature')
        return amz_date

    def _check_signed_headers(self, req, service, signed_names, protocol):
        problems = []
        if signed_names != sorted(signed_names) or any(n != n.lower() for n in signed_names):
            problems.append('SignedHeaders must be lowercase and sorted: %s' % ';'.join(signed_names))
        if 'host' not in signed_names:
            problems.append('the host header must be signed')
        for name in signed_names:
            if not name or not req.header_values(name):
                problems.append('signed header %s is not in the request' % json.dumps(name))
        for name in ('x-amz-security-token', 'x-amz-content-sha256'):
            if req.header(name) is not None and name not in signed_names:
                problems.append('%s is in the request but not signed' % name)
        if service == 's3':
            for key, _ in req.headers:
                if key.lower().startswith('x-amz-') and key.lower() not in signed_names:
                    problems.append('S3: header %s is not signed (all x-amz-* headers must be)' % key)
        if problems:
            raise category_error('signature', protocol, '; '.join(problems), 'signature')

    def _check_token(self, req, ident, protocol, now):
        token = req.header('X-Amz-Security-Token')
        if ident.token is None:
            if token is not None:
                raise category_error('bad-token', protocol,
                                     'The security token included in the request is invalid: %s '
                                     'is a long-term key, it takes no X-Amz-Security-Token'
                                     % ident.access_key, 'signature')
            return
        if token is None:
            raise category_error('bad-token', protocol,
                                 'The security token included in the request is invalid: temporary '
                                 'key %s needs its X-Amz-Security-Token' % ident.access_key, 'signature')
        if not hmac.compare_digest(token, ident.token):
            raise category_error('bad-token', protocol,
                                 'The security token included in the request is invalid: '
                                 'X-Amz-Security-Token is not the one issued with %s' % ident.access_key,
                                 'signature')
        if now >= ident.expiration:
            raise category_error('expired-token', protocol,
                                 'The security token included in the request is expired (%s expired %s)'
                                 % (ident.access_key, iso8601(ident.expiration)), 'signature')

    def _check_payload_hash(self, req, service, protocol):
        claimed = req.header('X-Amz-Content-SHA256')
        if claimed is None:
            if service == 's3':
                raise category_error('malformed-auth', protocol,
                                     'Missing required header for this request: x-amz-content-sha256',
                                     'signature')
            return
        if claimed == UNSIGNED_PAYLOAD:
            return
        if claimed.startswith('STREAMING-'):
            raise category_error('not-implemented', protocol,
                                 'x-amz-content-sha256 %s (chunked signing) is not supported by the fake'
                                 % claimed, 'unsupported')
        actual = hashlib.sha256(req.body).hexdigest()
        if claimed != actual:
            message = 'x-amz-content-sha256 %s does not match the body, whose SHA-256 is %s' % (claimed, actual)
            if service == 's3':
                raise Violation('signature', 'XAmzContentSHA256Mismatch', message, 400, extra={
                    'ClientComputedContentSHA256': claimed, 'S3ComputedContentSHA256': actual})
            raise category_error('signature', protocol, message, 'signature')

    def _check_signature(self, req, ident, service, region, signed_names, amz_date, given, protocol):
        aws_req = AWSRequest(method=req.method, url='http://fake' + req.raw_path, data=req.body)
        aws_req.headers = HTTPHeaders()
        for key, value in req.headers:
            aws_req.headers[key] = value
        aws_req.params = req.query_pairs()
        aws_req.context['timestamp'] = amz_date
        signer_class = _ReceivedS3SigV4 if service == 's3' else _ReceivedSigV4
        signer = signer_class(Credentials(ident.access_key, ident.secret_key, ident.token),
                              service, region, signed_names)
        canonical = signer.canonical_request(aws_req)
        to_sign = signer.string_to_sign(aws_req, canonical)
        expected = signer.signature(to_sign, aws_req)
        if not hmac.compare_digest(expected, given):
            raise category_error(
                'signature', protocol,
                'The request signature we calculated does not match the signature you provided. '
                'Check your AWS Secret Access Key and signing method.\n'
                'The Canonical String for this request should have been\n%s\n\n'
                'The String-to-Sign should have been\n%s\n' % (canonical, to_sign),
                'signature', extra={'AWSAccessKeyId': ident.access_key, 'StringToSign': to_sign,
                                    'SignatureProvided': given, 'CanonicalRequest': canonical})


# ---------------------------------------------------------------------------
# Recorder (calls, violations, stats) and fault injection
# ---------------------------------------------------------------------------

class Recorder:
    """Everything tests read back: calls, violations, statistics.

    Thread-safe; calls beyond MAX_CALLS_KEPT drop the oldest (seq keeps
    counting)."""

    def __init__(self, quiet=False, max_calls=MAX_CALLS_KEPT):
        self.lock = threading.Lock()
        self.quiet = quiet
        self.max_calls = max_calls
        self.reset()

    def reset(self, only=None):
        with self.lock:
            if only is None or 'calls' in only:
                self.calls = collections.deque(maxlen=self.max_calls)
                self.seq = 0
            if only is None or 'violations' in only:
                self.violations = []
            if only is None or 'stats' in only:
                self.stats = collections.OrderedDict()

    def call(self, entry):
        """Record one answered AWS call (ENTRY without seq) and count it."""
        with self.lock:
            self.seq += 1
            entry['seq'] = self.seq
            self.calls.append(entry)
            key = '%s.%s' % (entry['service'], entry['operation'] or '?')
            stat = self.stats.setdefault(key, {'calls': 0, 'errors': 0, 'faults': 0})
            stat['calls'] += 1
            if entry['error']:
                stat['errors'] += 1
            if entry.get('fault'):
                stat['faults'] += 1

    def violation(self, kind, service, operation, message, req, access_key):
        """Record and print one client violation (or fake bug)."""
        entry = {'time': time.time(), 'kind': kind, 'service': service, 'operation': operation,
                 'method': req.method, 'path': req.raw_path, 'query': req.raw_query,
                 'accessKeyId': access_key, 'message': message}
        with self.lock:
            entry['seq'] = self.seq + 1     # the seq the call record will get
            if len(self.violations) < MAX_VIOLATIONS_KEPT:
                self.violations.append(entry)
        if not self.quiet:
            sys.stderr.write('fake_aws: VIOLATION [%s] %s.%s %s %s: %s\n' % (
                kind, service, operation or '?', req.method, req.raw_path, message))
            sys.stderr.flush()

    def calls_matching(self, service=None, operation=None, since=0):
        with self.lock:
            return [c for c in self.calls
                    if (not service or c['service'] == service)
                    and (not operation or c['operation'] == operation)
                    and c['seq'] > since]

    def snapshot_violations(self):
        with self.lock:
            return list(self.violations)

    def snapshot_stats(self):
        with self.lock:
            return {'operations': dict(self.stats), 'calls': self.seq,
                    'violations': len(self.violations)}


FAULT_KINDS = ('throttle', '500', '503', 'slow', 'drop', 'slow-after', 'drop-after')
# Kinds applied after the handler ran (its state change is made, e.g. the
# build exists) but before the answer is sent; the others replace or delay
# the handler.
FAULTS_AFTER = ('slow-after', 'drop-after')


class FaultInjector:
    """Pending faults: each matches a service (and optionally an operation)
    and fires for its next `count` matching calls (-1: until reset)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pending = []
        self.fired = []

    def reset(self):
        with self.lock:
            self.pending = []
            self.fired = []

    def add(self, specs):
        """Validate and queue fault SPECS (a list of dicts); ConfigError if bad."""
        if not isinstance(specs, list):
            raise ConfigError('faults must be a list')
        checked = []
        for i, spec in enumerate(specs):
            where = 'faults[%d]' % i
            check_config_keys(spec, {'service', 'operation', 'kind', 'count', 'seconds'}, where)
            if spec.get('service') not in SERVICES + ('imds', 'container'):
                raise ConfigError('%s.service must be one of %s' % (where, ', '.join(SERVICES + ('imds', 'container'))))
            if spec.get('kind') not in FAULT_KINDS:
                raise ConfigError('%s.kind must be one of %s' % (where, ', '.join(FAULT_KINDS)))
            count = spec.get('count', 1)
            if not isinstance(count, int) or isinstance(count, bool) or count == 0 or count < -1:
                raise ConfigError('%s.count must be a positive integer or -1' % where)
            seconds = spec.get('seconds', 2)
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
                raise ConfigError('%s.seconds must be a non-negative number' % where)
            checked.append({'service': spec['service'], 'operation': spec.get('operation'),
                            'kind': spec['kind'], 'count': count, 'seconds': seconds})
        with self.lock:
            self.pending.extend(checked)

    def take(self, service, operation):
        """The fault to apply to this call (consuming one count), or None."""
        with self.lock:
            for fault in self.pending:
                if fault['service'] == service and fault['operation'] in (None, operation):
                    if fault['count'] > 0:
                        fault['count'] -= 1
                        if fault['count'] == 0:
                            self.pending.remove(fault)
                    self.fired.append({'time': time.time(), 'service': service, 'operation': operation,
                                       'kind': fault['kind']})
                    return dict(fault)
        return None

    def snapshot(self):
        with self.lock:
            return {'pending': [dict(f) for f in self.pending], 'fired': list(self.fired)}


def check_config_keys(section, allowed, where):
    """ConfigError unless SECTION is an object whose keys are all in ALLOWED."""
    if not isinstance(section, dict):
        raise ConfigError('%s must be an object' % where)
    for key in section:
        if key not in allowed:
            raise ConfigError('%s: unknown key "%s" (allowed: %s)' % (where, key, ', '.join(sorted(allowed))))


def config_number(section, key, where, default):
    value = section.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ConfigError('%s.%s must be a non-negative number' % (where, key))
    return value


def config_bool(section, key, where, default):
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError('%s.%s must be true or false' % (where, key))
    return value


# ---------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------

class CallContext:
    """What a service handler knows about the call it serves."""

    def __init__(self, app, identity, service, region, operation, request_id, now):
        self.app = app
        self.identity = identity
        self.service = service
        self.region = region
        self.operation = operation
        self.request_id = request_id
        self.now = now

    @property
    def account(self):
        return self.identity.account

    def arn(self, service, resource):
        return 'arn:aws:%s:%s:%s:%s' % (service, self.region, self.account, resource)


class Service:
    """Base of the in-memory services.

    OPERATIONS maps an operation name to the method serving it: method(ctx,
    params) -> output dict, or raises AwsError.  Handlers run under the app
    lock.  configure(section) merges a /_fake/configure section; records()
    is this service's part of GET /_fake/records."""

    name = ''
    OPERATIONS = {}

    def __init__(self):
        self.reset()

    def handler(self, operation):
        method = self.OPERATIONS.get(operation)
        return getattr(self, method) if method else None

    def reset(self):
        raise NotImplementedError

    def configure(self, section):
        raise NotImplementedError

    def records(self):
        return {}


# --- STS -------------------------------------------------------------------

class StsService(Service):
    """AssumeRole (temporary credentials the fake then accepts) and GetCallerIdentity."""

    name = 'sts'
    OPERATIONS = {'AssumeRole': 'assume_role', 'GetCallerIdentity': 'get_caller_identity'}
    ROLE_ARN_RE = re.compile(r'^arn:aws:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$')

    def __init__(self, credentials):
        self.credentials = credentials
        super().__init__()

    def reset(self):
        self.auto_create = True
        self.roles = {}
        self.assumed = []

    def configure(self, section):
        check_config_keys(section, {'autoCreate', 'roles'}, 'sts')
        self.auto_create = config_bool(section, 'autoCreate', 'sts', self.auto_create)
        roles = section.get('roles', {})
        check_config_keys(roles, set(roles), 'sts.roles')
        for arn, role in roles.items():
            where = 'sts.roles["%s"]' % arn
            check_config_keys(role, {'externalId', 'maxSessionDuration', 'deny'}, where)
            if not self.ROLE_ARN_RE.match(arn):
                raise ConfigError('%s: not a role ARN' % where)
            self.roles[arn] = {
                'externalId': role.get('externalId'),
                'maxSessionDuration': config_number(role, 'maxSessionDuration', where, 3600),
                'deny': config_bool(role, 'deny', where, False)}

    def records(self):
        return {'assumedRoles': self.assumed}

    def assume_role(self, ctx, params):
        arn = params['RoleArn']
        m = self.ROLE_ARN_RE.match(arn)
        if not m:
            raise AwsError('ValidationError', '%s is invalid: RoleArn must look like '
                           'arn:aws:iam::123456789012:role/name' % json.dumps(arn))
        role = self.roles.get(arn)
        denied = ('User: %s is not authorized to perform: sts:AssumeRole on resource: %s'
                  % (ctx.identity.arn, arn))
        if role is None and not self.auto_create:
            raise AwsError('AccessDenied', denied, 403)
        role = role or {'externalId': None, 'maxSessionDuration': 3600, 'deny': False}
        external_id = params.get('ExternalId')
        record = {'time': ctx.now, 'roleArn': arn, 'roleSessionName': params['RoleSessionName'],
                  'externalId': external_id, 'durationSeconds': params.get('DurationSeconds'),
                  'callerArn': ctx.identity.arn, 'callerAccessKeyId': ctx.identity.access_key,
                  'region': ctx.region, 'granted': False}
        self.assumed.append(record)
        if role['deny'] or (role['externalId'] is not None and external_id != role['externalId']):
            raise AwsError('AccessDenied', denied, 403)
        seconds = params.get('DurationSeconds', 3600)
        limit = 3600 if ctx.identity.assumed_role else role['maxSessionDuration']
        if seconds > limit:
            raise AwsError('ValidationError', 'The requested DurationSeconds exceeds the %s set for '
                           'this role (%d)' % ('1 hour session limit for roles assumed by role chaining'
                                               if ctx.identity.assumed_role else 'MaxSessionDuration',
                                               limit))
        ident = self.credentials.issue(arn, params['RoleSessionName'], seconds, ctx.now)
        record.update(granted=True, accessKeyId=ident.access_key, account=ident.account)
        return {
            'Credentials': {'AccessKeyId': ident.access_key, 'SecretAccessKey': ident.secret_key,
                            'SessionToken': ident.token, 'Expiration': ident.expiration},
            'AssumedRoleUser': {'AssumedRoleId': ident.user_id, 'Arn': ident.arn},
        }

    def get_caller_identity(self, ctx, params):
        return {'UserId': ctx.identity.user_id, 'Account': ctx.account, 'Arn': ctx.identity.arn}


# --- CodeBuild ---------------------------------------------------------------

BUILD_PHASES = ('SUBMITTED', 'QUEUED', 'PROVISIONING', 'DOWNLOAD_SOURCE', 'INSTALL',
                'PRE_BUILD', 'BUILD', 'POST_BUILD', 'UPLOAD_ARTIFACTS', 'FINALIZING')
BUILD_RESULTS = {
    # result: (status of the failing phase, its context statusCode)
    'SUCCEEDED': (None, None),
    'FAILED': ('FAILED', 'COMMAND_EXECUTION_ERROR'),
    'FAULT': ('FAULT', 'CLIENT_ERROR'),
    'TIMED_OUT': ('TIMED_OUT', 'BUILD_TIMED_OUT'),
}


HISTORY_GAP = (1.0, 60.0)        # seconds between history builds (uniform range)
HISTORY_INITIATOR = 'fake-history'


def build_duration(behaviour):
    """A new build's duration: durationSeconds + uniform(-jitterSeconds,
    +jitterSeconds), never below 1 s (nor below durationSeconds when that is
    shorter).  Drawn once, when the build starts."""
    base, jitter = behaviour['durationSeconds'], behaviour['jitterSeconds']
    if not jitter:
        return base
    return max(min(base, 1.0), base + random.uniform(-jitter, jitter))


def initiator_of(identity):
    """CodeBuild's initiator: the user name, or the role name of a role session."""
    if identity.assumed_role:
        return identity.arn.rsplit('/', 2)[-2]
    return identity.arn.rsplit('/', 1)[-1]


class Build:
    """One build.  Its phase is a function of time since start (no timers);
    DURATION is drawn when it starts (build_duration)."""

    def __init__(self, build_id, arn, number, project, behaviour, params,
                 account, region, initiator, start, duration, history=False):
        self.id = build_id
        self.arn = arn
        self.number = number
        self.project = project
        self.behaviour = behaviour          # project config at start time
        self.params = params
        self.account = account
        self.region = region
        self.initiator = initiator
        self.start = start
        self.duration = duration
        self.history = history              # made by the project's "history" config
        self.stopped_at = None
        self.stream = self.id.split(':', 1)[1]

    def _phases_done(self, now):
        """How many of BUILD_PHASES are over at time NOW."""
        step = self.duration / len(BUILD_PHASES)
        until = self.stopped_at if self.stopped_at is not None else now
        return len(BUILD_PHASES) if step <= 0 else min(int((until - self.start) // step), len(BUILD_PHASES))

    def complete(self, now):
        return self.stopped_at is not None or self._phases_done(now) >= len(BUILD_PHASES)

    def end_time(self):
        """When the build ends (or ended): stop time, else start + duration."""
        return self.stopped_at if self.stopped_at is not None else self.start + self.duration

    def status(self, now):
        if self.stopped_at is not None:
            return 'STOPPED'
        return self.behaviour['result'] if self.complete(now) else 'IN_PROGRESS'

    def summary(self, now):
        """This build in GET /_fake/builds."""
        return {'id': self.id, 'project': self.project, 'account': self.account, 'region': self.region,
                'buildNumber': self.number, 'startTime': self.start, 'endTime': self.end_time(),
                'status': self.status(now), 'history': self.history}

    def view(self, now):
        """The Build structure as BatchGetBuilds returns it at time NOW."""
        duration = self.duration
        step = duration / len(BUILD_PHASES)
        done = self._phases_done(now)
        result = self.behaviour['result']
        fail_status, fail_code = BUILD_RESULTS[result]
        phases = []
        for i, name in enumerate(BUILD_PHASES[:done + 1]):
            began = self.start + i * step
            if i < done:
                failed = fail_status and name == self.behaviour['failPhase']
                phase = {'phaseType': name, 'phaseStatus': fail_status if failed else 'SUCCEEDED',
                         'startTime': began, 'endTime': began + step,
                         'durationInSeconds': int(round(step))}
                if failed:
                    phase['contexts'] = [{'statusCode': fail_code, 'message': self.behaviour['failMessage']}]
                elif name != 'SUBMITTED':
                    phase['contexts'] = [{'statusCode': '', 'message': ''}]
                phases.append(phase)
            elif self.stopped_at is not None:
                phases.append({'phaseType': name, 'phaseStatus': 'STOPPED', 'startTime': began,
                               'endTime': self.stopped_at,
                               'durationInSeconds': int(round(self.stopped_at - began)),
                               'contexts': [{'statusCode': 'BUILD_STOPPED', 'message': 'Build was stopped'}]})
            else:
                phases.append({'phaseType': name, 'startTime': began})
        complete = self.stopped_at is not None or done >= len(BUILD_PHASES)
        end = self.stopped_at if self.stopped_at is not None else self.start + duration
        if complete:
            phases.append({'phaseType': 'COMPLETED', 'startTime': end})
            status = 'STOPPED' if self.stopped_at is not None else result
        else:
            status = 'IN_PROGRESS'
        env = [{'name': v['name'], 'value': v['value'], 'type': v.get('type', 'PLAINTEXT')}
               for v in self.params.get('environmentVariablesOverride', [])]
        source_version = self.params.get('sourceVersion')
        log_group = '/aws/codebuild/' + self.project
        build = {
            'id': self.id, 'arn': self.arn, 'buildNumber': self.number, 'startTime': self.start,
            'currentPhase': 'COMPLETED' if complete else BUILD_PHASES[done],
            'buildStatus': status, 'projectName': self.project, 'phases': phases,
            'source': {'type': 'NO_SOURCE', 'buildspec': self.params.get('buildspecOverride', 'buildspec.yml')},
            'environment': {'type': 'LINUX_CONTAINER', 'image': 'aws/codebuild/standard:7.0',
                            'computeType': 'BUILD_GENERAL1_SMALL', 'environmentVariables': env,
                            'privilegedMode': False, 'imagePullCredentialsType': 'CODEBUILD'},
            'serviceRole': 'arn:aws:iam::%s:role/codebuild-%s' % (self.account, self.project),
            'logs': {'groupName': log_group, 'streamName': self.stream,
                     'deepLink': 'https://console.aws.amazon.com/cloudwatch/home?region=%s'
                                 '#logEvent:group=%s;stream=%s' % (self.region, log_group, self.stream),
                     'cloudWatchLogsArn': 'arn:aws:logs:%s:%s:log-group:%s:log-stream:%s' % (
                         self.region, self.account, log_group, self.stream)},
            'timeoutInMinutes': self.params.get('timeoutInMinutesOverride', 60),
            'queuedTimeoutInMinutes': self.params.get('queuedTimeoutInMinutesOverride', 480),
            'buildComplete': complete, 'initiator': self.initiator,
        }
        if source_version:
            build['sourceVersion'] = source_version
            build['resolvedSourceVersion'] = source_version if re.fullmatch(r'[0-9a-f]{40}', source_version) \
                else hashlib.sha1(source_version.encode()).hexdigest()
        if complete:
            build['endTime'] = end
        return build


class CodeBuildService(Service):
    """Projects, builds that move through the phases over a configured time,
    idempotency tokens, stop, listing."""

    name = 'codebuild'
    OPERATIONS = {'StartBuild': 'start_build', 'BatchGetBuilds': 'batch_get_builds',
                  'StopBuild': 'stop_build', 'ListBuildsForProject': 'list_builds_for_project'}
    DEFAULT = {'durationSeconds': 2.0, 'jitterSeconds': 0, 'result': 'SUCCEEDED', 'failPhase': 'BUILD',
               'failMessage': 'Error while executing command: make. Reason: exit status 2',
               'exists': True, 'history': 0}
    MAX_HISTORY = 100000

    def reset(self):
        self.auto_create = True
        self.default = self._behaviour({}, 'codebuild.default', self.DEFAULT)
        self.projects = {}          # name -> behaviour
        self.builds = {}            # build id -> Build
        self.by_project = {}        # (account, region, name) -> [Build], oldest first
        self.tokens = {}            # (account, region, token) -> (params json, build id, time)

    def configure(self, section):
        check_config_keys(section, {'autoCreate', 'default', 'projects'}, 'codebuild')
        self.auto_create = config_bool(section, 'autoCreate', 'codebuild', self.auto_create)
        if 'default' in section:
            self.default = self._behaviour(section['default'], 'codebuild.default', self.DEFAULT)
        projects = section.get('projects', {})
        check_config_keys(projects, set(projects), 'codebuild.projects')
        for name, spec in projects.items():
            self.projects[name] = self._behaviour(spec, 'codebuild.projects["%s"]' % name, self.default)

    @staticmethod
    def _behaviour(spec, where, base):
        check_config_keys(spec, set(CodeBuildService.DEFAULT), where)
        out = dict(base)
        out.update(spec)
        out['durationSeconds'] = config_number(out, 'durationSeconds', where, 2.0)
        out['jitterSeconds'] = config_number(out, 'jitterSeconds', where, 0)
        history = out['history']
        if not isinstance(history, int) or isinstance(history, bool) \
                or not 0 <= history <= CodeBuildService.MAX_HISTORY:
            raise ConfigError('%s.history must be an integer from 0 to %d'
                              % (where, CodeBuildService.MAX_HISTORY))
        out['configuredAt'] = time.time()       # not a key: where the history ends
        if out['result'] not in BUILD_RESULTS:
            raise ConfigError('%s.result must be one of %s' % (where, ', '.join(BUILD_RESULTS)))
        if out['failPhase'] not in BUILD_PHASES:
            raise ConfigError('%s.failPhase must be one of %s' % (where, ', '.join(BUILD_PHASES)))
        if not isinstance(out['failMessage'], str):
            raise ConfigError('%s.failMessage must be a string' % where)
        config_bool(out, 'exists', where, True)
        return out

    def _project(self, ctx, name):
        behaviour = self.projects.get(name)
        if behaviour is None and self.auto_create:
            behaviour = self.default
        if behaviour is None or not behaviour['exists']:
            raise AwsError('ResourceNotFoundException', 'Project cannot be found: %s'
                           % ctx.arn('codebuild', 'project/' + name))
        return behaviour

    def records(self):
        return {'builds': len(self.builds)}

    def summaries(self, now, project=None):
        """GET /_fake/builds: every build, oldest first (history builds first)."""
        return [b.summary(now) for b in self.builds.values() if project in (None, b.project)]

    def _builds_of(self, ctx, name, behaviour):
        """The builds of project NAME in the caller's account and region,
        oldest first.  The first call there creates the project's history:
        behaviour['history'] SUCCEEDED builds that ended before the project
        was configured, newest last."""
        key = (ctx.account, ctx.region, name)
        builds = self.by_project.get(key)
        if builds is None:
            builds = self.by_project[key] = []
            past = dict(behaviour, result='SUCCEEDED')
            runs = []
            end = behaviour['configuredAt'] - random.uniform(*HISTORY_GAP)
            for _ in range(behaviour['history']):
                duration = build_duration(past)
                runs.append((end - duration, duration))
                end -= duration + random.uniform(*HISTORY_GAP)
            for start, duration in reversed(runs):
                self._new_build(ctx, name, builds, past, {'projectName': name},
                                HISTORY_INITIATOR, start, duration, history=True)
        return builds

    def _new_build(self, ctx, name, builds, behaviour, params, initiator, start, duration, history=False):
        build_id = '%s:%s' % (name, uuid.uuid4())
        build = Build(build_id, ctx.arn('codebuild', 'build/' + build_id), len(builds) + 1,
                      name, behaviour, params, ctx.account, ctx.region, initiator, start, duration,
                      history)
        builds.append(build)
        self.builds[build_id] = build
        return build

    def start_build(self, ctx, params):
        name = params['projectName']
        behaviour = self._project(ctx, name)
        token = params.get('idempotencyToken')
        fingerprint = json.dumps(jsonable({k: v for k, v in params.items() if k != 'idempotencyToken'}),
                                 sort_keys=True)
        if token is not None:
            key = (ctx.account, ctx.region, token)
            seen = self.tokens.get(key)
            if seen and ctx.now - seen[2] < IDEMPOTENCY_WINDOW:
                if seen[0] != fingerprint:
                    raise AwsError('IdempotentParameterMismatchException',
                                   'Idempotency token %s was used with different parameters' % token)
                return {'build': self.builds[seen[1]].view(ctx.now)}
        builds = self._builds_of(ctx, name, behaviour)
        build = self._new_build(ctx, name, builds, dict(behaviour), params, initiator_of(ctx.identity),
                                ctx.now, build_duration(behaviour))
        if token is not None:
            self.tokens[(ctx.account, ctx.region, token)] = (fingerprint, build.id, ctx.now)
        return {'build': build.view(ctx.now)}

    def _find(self, ctx, build_id):
        """The caller's build named by id or ARN, or None."""
        if build_id.startswith('arn:'):
            build_id = build_id.split(':build/', 1)[-1]
        build = self.builds.get(build_id)
        if build is None or build.account != ctx.account or build.region != ctx.region:
            return None
        return build

    def batch_get_builds(self, ctx, params):
        found, missing = [], []
        for build_id in params['ids']:
            build = self._find(ctx, build_id)
            if build is None:
                missing.append(build_id)
            else:
                found.append(build.view(ctx.now))
        out = {'builds': found}
        if missing:                 # BuildIds has min 1: absent rather than empty
            out['buildsNotFound'] = missing
        return out

    def stop_build(self, ctx, params):
        build = self._find(ctx, params['id'])
        if build is None:
            raise AwsError('ResourceNotFoundException', 'Build %s not found' % params['id'])
        if not build.complete(ctx.now):
            build.stopped_at = ctx.now
        return {'build': build.view(ctx.now)}

    def list_builds_for_project(self, ctx, params):
        name = params['projectName']
        builds = self._builds_of(ctx, name, self._project(ctx, name))
        ids = [b.id for b in builds]
        if params.get('sortOrder', 'DESCENDING') == 'DESCENDING':
            ids.reverse()
        start = 0
        if params.get('nextToken'):
            try:
                start = int(base64.b64decode(params['nextToken']).decode())
            except (ValueError, binascii.Error):
                raise AwsError('InvalidInputException', 'Invalid nextToken')
        page = ids[start:start + 100]
        out = {'ids': page} if page else {}     # BuildIds has min 1: absent rather than empty
        if start + 100 < len(ids):
            out['nextToken'] = base64.b64encode(str(start + 100).encode()).decode()
        return out


# --- CodePipeline ------------------------------------------------------------

class PipelineExecution:
    """One execution.  Timed actions finish at their due time (computed lazily
    by advance()); approval actions wait for PutApprovalResult."""

    def __init__(self, execution_id, pipeline, stages, now, account, region):
        self.id = execution_id
        self.pipeline = pipeline
        self.stages = stages            # normalized stage configs (see CodePipelineService)
        self.account = account
        self.region = region
        self.start = now
        self.status = 'InProgress'
        self.summary = None
        self.end = None
        self.stage_index = 0
        self.stage_start = now
        self.runs = []                  # one per entered stage: {'status', 'actions': {name: run}}
        self.stop_time = None
        self.variables = None           # StartPipelineExecution's variables and sourceRevisions
        self.source_revisions = None

    def _enter(self):
        while len(self.runs) <= self.stage_index:
            stage = self.stages[len(self.runs)]
            actions = collections.OrderedDict()
            for action in stage['actions']:
                actions[action['name']] = {
                    'id': str(uuid.uuid4()), 'status': 'InProgress', 'start': self.stage_start,
                    'end': None, 'summary': None, 'config': action,
                    'token': str(uuid.uuid4()) if action['approval'] else None}
            self.runs.append({'status': 'InProgress', 'actions': actions})
        return self.runs[self.stage_index]

    def advance(self, now):
        """Bring the execution up to time NOW."""
        while self.status in ('InProgress', 'Stopping'):
            if self.stage_index >= len(self.stages):
                self.status, self.end = 'Succeeded', self.stage_start
                return
            run = self._enter()
            waiting = False
            for action in run['actions'].values():
                if action['status'] != 'InProgress':
                    continue
                config = action['config']
                if config['approval']:
                    if self.status == 'Stopping':
                        action.update(status='Abandoned', end=self.stop_time)
                    else:
                        waiting = True
                else:
                    due = action['start'] + config['seconds']
                    if now >= due:
                        action.update(status='Failed' if config['fail'] else 'Succeeded', end=due)
                        if config['fail']:
                            action['summary'] = config['failMessage']
                    else:
                        waiting = True
            if waiting:
                run['status'] = self.status
                return
            stage_end = max([a['end'] for a in run['actions'].values()] + [self.stage_start])
            if self.status == 'Stopping':
                run['status'] = self.status = 'Stopped'
                self.end = stage_end
                return
            failed = [name for name, a in run['actions'].items() if a['status'] == 'Failed']
            if failed:
                run['status'] = self.status = 'Failed'
                self.end = stage_end
                self.summary = 'Stage %s failed: action %s' % (self.stages[self.stage_index]['name'],
                                                                ', '.join(failed))
                return
            run['status'] = 'Succeeded'
            self.stage_index += 1
            self.stage_start = stage_end

    def stop(self, now, abandon, reason):
        """Stop (abandon=True) or stop after in-progress actions (abandon=False)."""
        self.stop_time = now
        self.summary = reason
        if abandon:
            run = self._enter()
            for action in run['actions'].values():
                if action['status'] == 'InProgress':
                    action.update(status='Abandoned', end=now)
            run['status'] = self.status = 'Stopped'
            self.end = now
        else:
            self.status = 'Stopping'
            self.advance(now)

    def supersede(self, now):
        run = self._enter()
        for action in run['actions'].values():
            if action['status'] == 'InProgress':
                action.update(status='Abandoned', end=now)
        run['status'] = 'Cancelled'
        self.status = 'Superseded'
        self.end = now


class CodePipelineService(Service):
    """Pipelines of configured stages, executions, approvals, stop.

    Unlike the other services, pipelines exist only when configured (unless
    "autoCreate": true, which gives unknown names the default stages)."""

    name = 'codepipeline'
    OPERATIONS = {'StartPipelineExecution': 'start_pipeline_execution',
                  'GetPipelineExecution': 'get_pipeline_execution',
                  'GetPipelineState': 'get_pipeline_state',
                  'PutApprovalResult': 'put_approval_result',
                  'StopPipelineExecution': 'stop_pipeline_execution'}
    DEFAULT_STAGES = [{'name': 'Source', 'seconds': 1}, {'name': 'Build', 'seconds': 1}]

    def reset(self):
        self.auto_create = False
        self.default = self._pipeline({'stages': self.DEFAULT_STAGES}, 'default')
        self.pipelines = {}         # name -> {'stages', 'exists', 'supersedeOnStart', 'created'}
        self.executions = {}        # execution id -> PipelineExecution
        self.by_pipeline = {}       # (account, region, name) -> [PipelineExecution], oldest first
        self.tokens = {}            # (account, region, name, token) -> execution id
        self.approvals = []
        self.stops = []

    def configure(self, section):
        check_config_keys(section, {'autoCreate', 'default', 'pipelines'}, 'codepipeline')
        self.auto_create = config_bool(section, 'autoCreate', 'codepipeline', self.auto_create)
        if 'default' in section:
            self.default = self._pipeline(section['default'], 'codepipeline.default')
        pipelines = section.get('pipelines', {})
        check_config_keys(pipelines, set(pipelines), 'codepipeline.pipelines')
        for name, spec in pipelines.items():
            self.pipelines[name] = self._pipeline(spec, 'codepipeline.pipelines["%s"]' % name)

    @staticmethod
    def _pipeline(spec, where):
        check_config_keys(spec, {'stages', 'exists', 'supersedeOnStart'}, where)
        stages = spec.get('stages', CodePipelineService.DEFAULT_STAGES)
        if not isinstance(stages, list) or not stages:
            raise ConfigError('%s.stages must be a non-empty list' % where)
        normalized = []
        for i, stage in enumerate(stages):
            stage_where = '%s.stages[%d]' % (where, i)
            keys = {'name', 'seconds', 'approval', 'fail', 'failMessage', 'actionName', 'actions'}
            check_config_keys(stage, keys, stage_where)
            if not isinstance(stage.get('name'), str) or not stage['name']:
                raise ConfigError('%s.name must be a non-empty string' % stage_where)
            actions = stage.get('actions')
            if actions is None:
                actions = [dict({k: v for k, v in stage.items() if k not in ('name', 'actions', 'actionName')},
                                name=stage.get('actionName', stage['name']))]
            elif not isinstance(actions, list) or not actions:
                raise ConfigError('%s.actions must be a non-empty list' % stage_where)
            normalized.append({'name': stage['name'], 'actions': [
                CodePipelineService._action(a, '%s.actions[%d]' % (stage_where, j))
                for j, a in enumerate(actions)]})
        return {'stages': normalized, 'exists': config_bool(spec, 'exists', where, True),
                'supersedeOnStart': config_bool(spec, 'supersedeOnStart', where, False),
                'created': time.time()}

    @staticmethod
    def _action(spec, where):
        check_config_keys(spec, {'name', 'seconds', 'approval', 'fail', 'failMessage'}, where)
        if not isinstance(spec.get('name'), str) or not spec['name']:
            raise ConfigError('%s.name must be a non-empty string' % where)
        return {'name': spec['name'], 'seconds': config_number(spec, 'seconds', where, 1),
                'approval': config_bool(spec, 'approval', where, False),
                'fail': config_bool(spec, 'fail', where, False),
                'failMessage': spec.get('failMessage', 'Action failed (configured to fail)')}

    def records(self):
        return {'approvals': self.approvals, 'stops': self.stops,
                'executions': [{'pipelineName': e.pipeline, 'pipelineExecutionId': e.id,
                                'status': e.status, 'variables': e.variables,
                                'sourceRevisions': e.source_revisions} for e in self.executions.values()]}

    def _config(self, ctx, name):
        config = self.pipelines.get(name)
        if config is None and self.auto_create:
            config = self.default
        if config is None or not config['exists']:
            raise AwsError('PipelineNotFoundException',
                           'Account \'%s\' does not have a pipeline with name \'%s\'' % (ctx.account, name))
        return config

    def _executions(self, ctx, name):
        executions = self.by_pipeline.get((ctx.account, ctx.region, name), [])
        for execution in executions:
            execution.advance(ctx.now)
        return executions

    def _execution(self, ctx, name, execution_id):
        self._config(ctx, name)
        execution = self.executions.get(execution_id)
        if execution is None or execution.pipeline != name or execution.account != ctx.account \
                or execution.region != ctx.region:
            raise AwsError('PipelineExecutionNotFoundException',
                           'Pipeline execution %s of pipeline %s not found' % (execution_id, name))
        execution.advance(ctx.now)
        return execution

    def start_pipeline_execution(self, ctx, params):
        name = params['name']
        config = self._config(ctx, name)
        token = params.get('clientRequestToken')
        if token is not None:
            known = self.tokens.get((ctx.account, ctx.region, name, token))
            if known:
                return {'pipelineExecutionId': known}
        executions = self.by_pipeline.setdefault((ctx.account, ctx.region, name), [])
        if config['supersedeOnStart']:
            for older in self._executions(ctx, name):
                if older.status == 'InProgress':
                    older.supersede(ctx.now)
        execution = PipelineExecution(str(uuid.uuid4()), name, config['stages'], ctx.now,
                                      ctx.account, ctx.region)
        execution.variables = params.get('variables')
        execution.source_revisions = params.get('sourceRevisions')
        execution.advance(ctx.now)
        executions.append(execution)
        self.executions[execution.id] = execution
        if token is not None:
            self.tokens[(ctx.account, ctx.region, name, token)] = execution.id
        return {'pipelineExecutionId': execution.id}

    def get_pipeline_execution(self, ctx, params):
        execution = self._execution(ctx, params['pipelineName'], params['pipelineExecutionId'])
        out = {'pipelineName': execution.pipeline, 'pipelineVersion': 1,
               'pipelineExecutionId': execution.id, 'status': execution.status,
               'artifactRevisions': []}
        if execution.summary:
            out['statusSummary'] = execution.summary
        return {'pipelineExecution': out}

    def get_pipeline_state(self, ctx, params):
        name = params['name']
        config = self._config(ctx, name)
        executions = self._executions(ctx, name)
        states = []
        for i, stage in enumerate(config['stages']):
            latest = next((e for e in reversed(executions) if len(e.runs) > i and e.stages is config['stages']),
                          None)
            state = {'stageName': stage['name'], 'inboundTransitionState': {'enabled': True},
                     'actionStates': []}
            run = latest.runs[i] if latest else None
            if run:
                state['latestExecution'] = {'pipelineExecutionId': latest.id, 'status': run['status']}
            for action in stage['actions']:
                action_state = {'actionName': action['name']}
                if run:
                    action_state['latestExecution'] = self._action_view(run['actions'][action['name']])
                state['actionStates'].append(action_state)
            states.append(state)
        return {'pipelineName': name, 'pipelineVersion': 1, 'stageStates': states,
                'created': config['created'], 'updated': config['created']}

    @staticmethod
    def _action_view(action):
        view = {'actionExecutionId': action['id'], 'status': action['status'],
                'lastStatusChange': action['end'] or action['start']}
        if action['summary']:
            view['summary'] = action['summary']
        if action['token'] and action['status'] == 'InProgress':
            view['token'] = action['token']
        if action['status'] == 'Failed' and not action['config']['approval']:
            view['errorDetails'] = {'code': 'JobFailed', 'message': action['config']['failMessage']}
        return view

    def put_approval_result(self, ctx, params):
        name, stage_name, action_name = params['pipelineName'], params['stageName'], params['actionName']
        config = self._config(ctx, name)
        index = next((i for i, s in enumerate(config['stages']) if s['name'] == stage_name), None)
        if index is None:
            raise AwsError('StageNotFoundException', 'Stage %s not found in pipeline %s' % (stage_name, name))
        if action_name not in [a['name'] for a in config['stages'][index]['actions']]:
            raise AwsError('ActionNotFoundException', 'Action %s not found in stage %s' % (action_name, stage_name))
        token = params['token']
        for execution in reversed(self._executions(ctx, name)):
            if len(execution.runs) <= index:
                continue
            action = execution.runs[index]['actions'][action_name]
            if action['token'] != token:
                continue
            if action['status'] != 'InProgress':
                raise AwsError('ApprovalAlreadyCompletedException',
                               'Approval for %s/%s/%s is already %s' % (name, stage_name, action_name,
                                                                        action['status']))
            result = params['result']
            approved = result['status'] == 'Approved'
            action.update(status='Succeeded' if approved else 'Failed', end=ctx.now,
                          summary=result['summary'])
            self.approvals.append({'time': ctx.now, 'pipelineName': name, 'stageName': stage_name,
                                   'actionName': action_name, 'pipelineExecutionId': execution.id,
                                   'status': result['status'], 'summary': result['summary'],
                                   'by': ctx.identity.arn})
            execution.advance(ctx.now)
            return {'approvedAt': ctx.now}
        raise AwsError('InvalidApprovalTokenException',
                       'The token %s is not valid for %s/%s/%s' % (token, name, stage_name, action_name))

    def stop_pipeline_execution(self, ctx, params):
        execution = self._execution(ctx, params['pipelineName'], params['pipelineExecutionId'])
        if execution.status != 'InProgress':
            raise AwsError('PipelineExecutionNotStoppableException',
                           'Pipeline execution %s is %s and cannot be stopped' % (execution.id, execution.status))
        abandon = params.get('abandon', False)
        execution.stop(ctx.now, abandon, params.get('reason'))
        self.stops.append({'time': ctx.now, 'pipelineName': execution.pipeline,
                           'pipelineExecutionId': execution.id, 'abandon': abandon,
                           'reason': params.get('reason')})
        return {'pipelineExecutionId': execution.id}


# --- Lambda ------------------------------------------------------------------

class LambdaService(Service):
    """Invoke with configured behaviours: echo, error, json."""

    name = 'lambda'
    OPERATIONS = {'Invoke': 'invoke'}
    BEHAVIOURS = ('echo', 'error', 'json')
    NAME_RE = re.compile(r'^(?:arn:aws:lambda:([a-z0-9-]+):(\d{12}):function:)?'
                         r'(?:(\d{12}):function:)?([A-Za-z0-9_-]{1,64})(?::([A-Za-z0-9$_-]+))?$')

    def reset(self):
        self.auto_create = True
        self.functions = {}
        self.invocations = []

    def configure(self, section):
        check_config_keys(section, {'autoCreate', 'functions'}, 'lambda')
        self.auto_create = config_bool(section, 'autoCreate', 'lambda', self.auto_create)
        functions = section.get('functions', {})
        check_config_keys(functions, set(functions), 'lambda.functions')
        for name, spec in functions.items():
            where = 'lambda.functions["%s"]' % name
            check_config_keys(spec, {'behaviour', 'result', 'functionError', 'exists'}, where)
            behaviour = spec.get('behaviour', 'echo')
            if behaviour not in self.BEHAVIOURS:
                raise ConfigError('%s.behaviour must be one of %s' % (where, ', '.join(self.BEHAVIOURS)))
            if spec.get('functionError', 'Unhandled') not in ('Handled', 'Unhandled'):
                raise ConfigError('%s.functionError must be Handled or Unhandled' % where)
            self.functions[name] = {'behaviour': behaviour, 'result': spec.get('result'),
                                    'functionError': spec.get('functionError', 'Unhandled'),
                                    'exists': config_bool(spec, 'exists', where, True)}

    def records(self):
        return {'invocations': self.invocations}

    def invoke(self, ctx, params):
        m = self.NAME_RE.match(params['FunctionName'])
        if not m:
            raise AwsError('ValidationException', 'FunctionName %s is not a function name or ARN'
                           % json.dumps(params['FunctionName']))
        name, qualifier = m.group(4), params.get('Qualifier') or m.group(5)
        function_arn = ctx.arn('lambda', 'function:' + name)
        config = self.functions.get(name)
        if config is None and self.auto_create:
            config = {'behaviour': 'echo', 'result': None, 'functionError': 'Unhandled', 'exists': True}
        if config is None or not config['exists']:
            raise AwsError('ResourceNotFoundException', 'Function not found: %s%s' % (
                function_arn, ':' + qualifier if qualifier else ''), 404)
        raw = params.get('Payload', b'')
        try:
            payload = json.loads(raw.decode('utf-8')) if raw else None
        except (UnicodeDecodeError, ValueError):
            raise AwsError('InvalidRequestContentException',
                           'Could not parse request body into json: the payload is not JSON')
        invocation_type = params.get('InvocationType', 'RequestResponse')
        self.invocations.append({'time': ctx.now, 'function': name, 'qualifier': qualifier,
                                 'invocationType': invocation_type, 'payload': payload,
                                 'region': ctx.region, 'account': ctx.account})
        version = qualifier if qualifier and qualifier.isdigit() else '$LATEST'
        if invocation_type == 'Event':
            return {'StatusCode': 202}
        if invocation_type == 'DryRun':
            return {'StatusCode': 204}
        out = {'StatusCode': 200, 'ExecutedVersion': version}
        if config['behaviour'] == 'echo':
            result = {'echo': payload}
        elif config['behaviour'] == 'json':
            result = config['result']
        else:
            result = config['result'] or {'errorMessage': 'configured to fail', 'errorType': 'Error',
                                          'stackTrace': []}
            out['FunctionError'] = config['functionError']
        if params.get('LogType') == 'Tail':
            out['LogResult'] = base64.b64encode(b'START RequestId: %s\nEND\n' % ctx.request_id.encode()).decode()
        out['Payload'] = json.dumps(result).encode()
        return out


# --- SNS ---------------------------------------------------------------------

class SnsService(Service):
    """Publish; messages are recorded per topic."""

    name = 'sns'
    OPERATIONS = {'Publish': 'publish'}
    TOPIC_RE = re.compile(r'^arn:aws:sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,256}(?:\.fifo)?)$')

    def reset(self):
        self.auto_create = True
        self.topics = set()
        self.messages = collections.OrderedDict()

    def configure(self, section):
        check_config_keys(section, {'autoCreate', 'topics'}, 'sns')
        self.auto_create = config_bool(section, 'autoCreate', 'sns', self.auto_create)
        topics = section.get('topics', [])
        if not isinstance(topics, list) or not all(isinstance(t, str) and self.TOPIC_RE.match(t) for t in topics):
            raise ConfigError('sns.topics must be a list of topic ARNs')
        self.topics.update(topics)

    def records(self):
        return {'messages': self.messages}

    def publish(self, ctx, params):
        arn = params.get('TopicArn') or params.get('TargetArn')
        if not arn:
            raise AwsError('InvalidParameter', 'Invalid parameter: TopicArn or TargetArn Reason: '
                           'no value for required parameter (phone numbers are not supported by the fake)')
        m = self.TOPIC_RE.match(arn)
        if not m:
            raise AwsError('InvalidParameter', 'Invalid parameter: TopicArn %s' % json.dumps(arn))
        if m.group(1) != ctx.region:
            raise AwsError('InvalidParameter', 'Invalid parameter: TopicArn: topic region %s is not the '
                           'request region %s' % (m.group(1), ctx.region))
        if arn not in self.topics and not self.auto_create:
            raise AwsError('NotFound', 'Topic does not exist', 404)
        subject = params.get('Subject')
        if subject is not None and (not subject or len(subject) > 100):
            raise AwsError('InvalidParameter', 'Invalid parameter: Subject must be 1-100 characters')
        message = params['Message']
        if len(message.encode('utf-8')) > 256 * 1024:
            raise AwsError('InvalidParameter', 'Invalid parameter: Message too long')
        if params.get('MessageStructure') == 'json':
            try:
                doc = json.loads(message)
            except ValueError:
                doc = None
            if not isinstance(doc, dict) or 'default' not in doc:
                raise AwsError('InvalidParameter', 'Invalid parameter: Message Structure - JSON message '
                               'body failed to parse or has no "default" entry')
        message_id = str(uuid.uuid4())
        self.messages.setdefault(arn, []).append({
            'time': ctx.now, 'messageId': message_id, 'subject': subject, 'message': message,
            'messageStructure': params.get('MessageStructure'),
            'messageAttributes': jsonable(params.get('MessageAttributes', {})),
            'account': ctx.account})
        return {'MessageId': message_id}


# --- S3 ----------------------------------------------------------------------

class S3Service(Service):
    """Buckets of objects in memory; path-style addressing."""

    name = 's3'
    OPERATIONS = {'PutObject': 'put_object', 'GetObject': 'get_object',
                  'HeadObject': 'head_object', 'ListObjectsV2': 'list_objects_v2'}

    def reset(self):
        self.auto_create = True
        self.buckets = {}           # name -> {key: object}

    def configure(self, section):
        check_config_keys(section, {'autoCreate', 'buckets', 'objects'}, 's3')
        self.auto_create = config_bool(section, 'autoCreate', 's3', self.auto_create)
        buckets = section.get('buckets', [])
        if not isinstance(buckets, list) or not all(isinstance(b, str) for b in buckets):
            raise ConfigError('s3.buckets must be a list of bucket names')
        for name in buckets:
            self.buckets.setdefault(name, {})
        objects = section.get('objects', {})
        check_config_keys(objects, set(objects), 's3.objects')
        for bucket, contents in objects.items():
            check_config_keys(contents, set(contents), 's3.objects["%s"]' % bucket)
            for key, text in contents.items():
                if not isinstance(text, str):
                    raise ConfigError('s3.objects["%s"]["%s"] must be a string' % (bucket, key))
                self.buckets.setdefault(bucket, {})[key] = self._object(text.encode(), 'text/plain', {})

    @staticmethod
    def _object(body, content_type, metadata):
        return {'body': body, 'etag': '"%s"' % hashlib.md5(body).hexdigest(),
                'modified': float(int(time.time())), 'type': content_type or 'binary/octet-stream',
                'metadata': metadata}

    def records(self):
        return {'buckets': {name: sorted(objects) for name, objects in self.buckets.items()}}

    def _bucket(self, name, create=False):
        if name not in self.buckets:
            if not (create and self.auto_create):
                raise AwsError('NoSuchBucket', 'The specified bucket does not exist', 404,
                               extra={'BucketName': name})
            self.buckets[name] = {}
        return self.buckets[name]

    def _get(self, params):
        obj = self._bucket(params['Bucket']).get(params['Key'])
        if obj is None:
            raise AwsError('NoSuchKey', 'The specified key does not exist.', 404, extra={'Key': params['Key']})
        return obj

    def put_object(self, ctx, params):
        body = params.get('Body', b'')
        md5 = params.get('ContentMD5')
        if md5 is not None and md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
            raise AwsError('BadDigest', 'The Content-MD5 you specified did not match what we received.')
        if 'ContentLength' in params and params['ContentLength'] != len(body):
            raise AwsError('IncompleteBody', 'Content-Length %d does not match the body (%d bytes)'
                           % (params['ContentLength'], len(body)))
        obj = self._object(body, params.get('ContentType'), params.get('Metadata', {}))
        self._bucket(params['Bucket'], create=True)[params['Key']] = obj
        return {'ETag': obj['etag']}

    def _head(self, obj):
        return {'ContentLength': len(obj['body']), 'ContentType': obj['type'], 'ETag': obj['etag'],
                'LastModified': obj['modified'], 'Metadata': obj['metadata'], 'AcceptRanges': 'bytes'}

    def get_object(self, ctx, params):
        obj = self._get(params)
        out = self._head(obj)
        body = obj['body']
        wanted = params.get('Range')
        if wanted:
            m = re.fullmatch(r'bytes=(\d*)-(\d*)', wanted)
            if not m or (not m.group(1) and not m.group(2)):
                raise AwsError('InvalidArgument', 'Unsupported Range %s' % json.dumps(wanted))
            size = len(body)
            if m.group(1):
                first = int(m.group(1))
                last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:
                first, last = max(size - int(m.group(2)), 0), size - 1
            if first >= size or first > last:
                raise AwsError('InvalidRange', 'The requested range is not satisfiable', 416)
            body = body[first:last + 1]
            out.update({'ContentRange': 'bytes %d-%d/%d' % (first, last, size), HTTP_STATUS: 206})
        out['ContentLength'] = len(body)
        out['Body'] = body
        return out

    def head_object(self, ctx, params):
        return self._head(self._get(params))

    def list_objects_v2(self, ctx, params):
        bucket = params['Bucket']
        objects = self._bucket(bucket)
        prefix = params.get('Prefix', '')
        delimiter = params.get('Delimiter')
        max_keys = params.get('MaxKeys', 1000)
        after = params.get('StartAfter', '')
        token = params.get('ContinuationToken')
        if token is not None:
            try:
                after = base64.urlsafe_b64decode(token.encode()).decode()
            except (ValueError, binascii.Error):
                raise AwsError('InvalidArgument', 'The continuation token provided is incorrect')
        contents, prefixes = [], []
        truncated = False
        last = None
        for key in sorted(objects):
            if not key.startswith(prefix) or key <= after:
                continue
            if delimiter and delimiter in key[len(prefix):]:
                common = key[:len(prefix) + key[len(prefix):].index(delimiter) + len(delimiter)]
                if common <= after or (prefixes and prefixes[-1]['Prefix'] == common):
                    continue
                entry = ('prefix', common)
            else:
                entry = ('key', key)
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            if entry[0] == 'prefix':
                prefixes.append({'Prefix': entry[1]})
                last = entry[1] + '\U0010ffff'
            else:
                obj = objects[key]
                contents.append({'Key': key, 'LastModified': obj['modified'], 'ETag': obj['etag'],
                                 'Size': len(obj['body']), 'StorageClass': 'STANDARD'})
                last = key
        out = {'IsTruncated': truncated, 'Name': bucket, 'Prefix': prefix, 'MaxKeys': max_keys,
               'KeyCount': len(contents) + len(prefixes)}
        if contents:
            out['Contents'] = contents
        if prefixes:
            out['CommonPrefixes'] = prefixes
        if delimiter:
            out['Delimiter'] = delimiter
        if token is not None:
            out['ContinuationToken'] = token
        if params.get('StartAfter'):
            out['StartAfter'] = params['StartAfter']
        if truncated:
            out['NextContinuationToken'] = base64.urlsafe_b64encode(last.encode()).decode()
        return out


# ---------------------------------------------------------------------------
# Metadata endpoints: IMDSv2 and container credentials (unsigned)
# ---------------------------------------------------------------------------

class MetadataEndpoints:
    """IMDSv2 under /latest/ and ECS-style credentials at
    /_fake/container-credentials.  Credentials issued here are temporary
    credentials the signer accepts."""

    def __init__(self, credentials):
        self.credentials = credentials
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.role_name = 'steppy-instance-role'
        self.account = STATIC_ACCOUNT
        self.region = 'us-east-1'
        self.seconds = 6 * 3600
        self.disabled = False
        self.container_token = None
        self.container_role = 'steppy-task-role'
        self.tokens = {}            # IMDS session token -> expiry
        self.issued = {}            # role ARN -> Identity (reused until 5 minutes before expiry)

    def configure_imds(self, section):
        check_config_keys(section, {'roleName', 'account', 'region', 'credentialSeconds', 'disabled'}, 'imds')
        self.role_name = section.get('roleName', self.role_name)
        self.account = section.get('account', self.account)
        self.region = section.get('region', self.region)
        self.seconds = config_number(section, 'credentialSeconds', 'imds', self.seconds)
        self.disabled = config_bool(section, 'disabled', 'imds', self.disabled)

    def _credentials(self, role_name, session, now):
        arn = 'arn:aws:iam::%s:role/%s' % (self.account, role_name)
        ident = self.issued.get(arn)
        if ident is None or ident.expiration - now < 300:
            ident = self.credentials.issue(arn, session, self.seconds, now)
            self.issued[arn] = ident
        return ident

    def imds(self, req, now):
        """(operation, Response) for a request under /latest/."""
        if self.disabled:
            return 'Disabled', text_response(404, 'Not Found')
        if req.raw_path == '/latest/api/token':
            if req.method != 'PUT':
                return 'GetToken', text_response(405, 'Method Not Allowed')
            ttl = req.header('X-aws-ec2-metadata-token-ttl-seconds')
            if ttl is None or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return 'GetToken', text_response(400, 'Bad Request')
            token = base64.b64encode(secrets.token_bytes(42)).decode()
            with self.lock:
                self.tokens[token] = now + int(ttl)
            return 'GetToken', text_response(200, token, [('X-aws-ec2-metadata-token-ttl-seconds', ttl)])
        token = req.header('X-aws-ec2-metadata-token')
        with self.lock:
            valid = token is not None and self.tokens.get(token, 0) > now
        if req.method != 'GET':
            return 'Get', text_response(405, 'Method Not Allowed')
        if not valid:
            return 'Get', text_response(401, 'Unauthorized')
        creds_path = '/latest/meta-data/iam/security-credentials/'
        if req.raw_path == creds_path:
            return 'GetRoleName', text_response(200, self.role_name)
        if req.raw_path.startswith(creds_path):
            role = req.raw_path[len(creds_path):]
            if role != self.role_name:
                return 'GetCredentials', text_response(404, 'Not Found')
            with self.lock:
                ident = self._credentials(role, INSTANCE_ID, now)
            return 'GetCredentials', json_response(200, {
                'Code': 'Success', 'LastUpdated': iso8601(now), 'Type': 'AWS-HMAC',
                'AccessKeyId': ident.access_key, 'SecretAccessKey': ident.secret_key,
                'Token': ident.token, 'Expiration': iso8601(ident.expiration)})
        if req.raw_path == '/latest/meta-data/placement/region':
            return 'GetRegion', text_response(200, self.region)
        if req.raw_path == '/latest/meta-data/instance-id':
            return 'GetInstanceId', text_response(200, INSTANCE_ID)
        if req.raw_path == '/latest/dynamic/instance-identity/document':
            return 'GetIdentityDocument', json_response(200, {
                'accountId': self.account, 'region': self.region, 'instanceId': INSTANCE_ID,
                'availabilityZone': self.region + 'a', 'architecture': 'x86_64'})
        return 'Get', text_response(404, 'Not Found')

    def container(self, req, now):
        """Response for GET /_fake/container-credentials."""
        if req.method != 'GET':
            return text_response(405, 'Method Not Allowed')
        if self.container_token is not None and req.header('Authorization') != self.container_token:
            return json_response(401, {'code': 'InvalidToken',
                                       'message': 'Authorization header missing or not the configured token'})
        with self.lock:
            ident = self._credentials(self.container_role, 'ecs-task', now)
        return json_response(200, {'AccessKeyId': ident.access_key, 'SecretAccessKey': ident.secret_key,
                                   'Token': ident.token, 'Expiration': iso8601(ident.expiration),
                                   'RoleArn': ident.assumed_role})


def text_response(status, text, headers=None):
    return Response(status, text.encode(), [('Content-Type', 'text/plain')] + (headers or []))


def json_response(status, doc):
    return Response(status, json.dumps(doc, indent=None).encode(), [('Content-Type', 'application/json')])


# ---------------------------------------------------------------------------
# The application: one request in, one response out
# ---------------------------------------------------------------------------

class FakeAws:
    """All state and the request pipeline.

    AWS requests go: signature -> parse (protocol) -> shape check -> fault ->
    service handler (under self.lock) -> output shape check -> fault after
    (slow-after, drop-after) -> answer."""

    def __init__(self, catalog, quiet=False, max_calls=MAX_CALLS_KEPT):
        self.catalog = catalog
        self.lock = threading.RLock()
        self.credentials = CredentialStore()
        self.verifier = SigV4Verifier(self.credentials)
        self.recorder = Recorder(quiet, max_calls)
        self.faults = FaultInjector()
        self.metadata = MetadataEndpoints(self.credentials)
        self.services = {
            'sts': StsService(self.credentials),
            'codebuild': CodeBuildService(),
            'codepipeline': CodePipelineService(),
            'lambda': LambdaService(),
            'sns': SnsService(),
            's3': S3Service(),
        }

    # --- dispatch ---

    def handle(self, req):
        """Answer REQ; raises DropConnection for a 'drop' or 'drop-after' fault."""
        if req.raw_path.startswith('/_fake/container-credentials'):
            return self._unsigned_call('container', 'GetCredentials', req,
                                       lambda now: (None, self.metadata.container(req, now)))
        if req.raw_path.startswith('/_fake/'):
            return self.control(req)
        if req.raw_path.startswith('/latest/'):
            return self._unsigned_call('imds', None, req, lambda now: self.metadata.imds(req, now))
        return self.aws_call(req)

    def _unsigned_call(self, service, operation, req, serve):
        """Serve a metadata request, with faults and a call record."""
        now = time.time()
        fault = self.faults.take(service, operation)
        if fault and fault['kind'] == 'drop':
            self._record(service, operation, req, None, None, None, 0, None, 'drop')
            raise DropConnection()
        if fault and fault['kind'] == 'slow':
            time.sleep(fault['seconds'])
        op, resp = serve(now)
        operation = operation or op
        if fault and fault['kind'] in ('throttle', '500', '503'):
            status = {'throttle': 429, '500': 500, '503': 503}[fault['kind']]
            resp = text_response(status, 'fault injected: %s' % fault['kind'])
        if fault and fault['kind'] in FAULTS_AFTER:
            try:
                self._apply_fault_after(fault)
            except DropConnection:
                self._record(service, operation, req, None, None, None, 0, None, fault['kind'])
                raise
        self._record(service, operation, req, None, None, None, resp.status,
                     None if resp.status < 400 else str(resp.status), fault and fault['kind'])
        return resp

    def aws_call(self, req):
        """Verify, parse, check, fault, serve and record one AWS API call."""
        now = time.time()
        request_id = str(uuid.uuid4())
        scope = self.verifier.scope_of(req)
        if scope:
            service, region = scope
            model = self.catalog.model(service)
            protocol = model.protocol if model else guess_service(req, self.catalog)[1]
        else:
            (service, protocol), region = guess_service(req, self.catalog), None
            model = self.catalog.model(service) if service else None
        identity = operation = params = fault = None
        try:
            if scope and model is None:
                raise category_error('unknown-operation', protocol, 'service "%s" (from the credential '
                                     'scope) is not served by the fake; it serves %s' % (
                                         service, ', '.join(SERVICES)), 'unsupported')
            identity = self.verifier.verify(req, service, region, protocol, now)
            proto = PROTOCOLS[protocol]
            op_model, params, problems = proto.parse(req, model, self.catalog)
            operation = op_model.name
            handler = self.services[service].handler(operation)
            if handler is None:
                raise category_error('not-implemented', protocol, 'the fake does not implement %s.%s'
                                     % (service, operation), 'unsupported')
            if op_model.input_shape is not None:
                check_shape(params, op_model.input_shape, '', problems)
            if problems:
                raise category_error('validation', protocol, '%s: %d validation error%s: %s' % (
                    operation, len(problems), '' if len(problems) == 1 else 's', '; '.join(problems)),
                    'model')
            fault = self.faults.take(service, operation)
            if fault and fault['kind'] not in FAULTS_AFTER:
                self._apply_fault(fault, protocol)
            ctx = CallContext(self, identity, service, region, operation, request_id, time.time())
            with self.lock:
                output = handler(ctx, params)
            resp = self._answer(proto, op_model, output, request_id, req, identity)
            status, error = resp.status, None
        except DropConnection:
            self._record(service, operation, req, identity, params, region, 0, None, fault['kind'])
            raise
        except AwsError as err:
            if operation is None and model is not None:
                operation = peek_operation(req, model, self.catalog)
            if isinstance(err, Violation):
                self.recorder.violation(err.kind, service, operation, err.message, req,
                                        identity.access_key if identity else None)
            resp = PROTOCOLS[protocol].error(err, request_id, model)
            status, error = err.status, err.code
        except Exception:           # a bug in the fake: loud, and a 500
            message = traceback.format_exc()
            self.recorder.violation('fake-bug', service, operation, message, req, None)
            err = category_error('internal', protocol, 'fake_aws internal error (see its stderr)')
            resp = PROTOCOLS[protocol].error(err, request_id, model)
            status, error = err.status, err.code
        if fault and fault['kind'] in FAULTS_AFTER:     # the handler ran, answer or error
            try:
                self._apply_fault_after(fault)
            except DropConnection:
                self._record(service, operation, req, identity, params, region, 0, None, fault['kind'])
                raise
        self._record(service, operation, req, identity, params, region, status, error,
                     fault and fault['kind'])
        return resp

    def _apply_fault(self, fault, protocol):
        """Apply a fault before the handler: drop, delay, or answer an error."""
        kind = fault['kind']
        if kind == 'drop':
            raise DropConnection()
        if kind == 'slow':
            time.sleep(fault['seconds'])
        elif kind == 'throttle':
            err = category_error('throttle', protocol, 'Rate exceeded (fault injected)')
            if protocol == 'rest-json':
                err.headers.append(('Retry-After', '1'))
            raise err
        elif kind == '500':
            raise category_error('internal', protocol, 'Internal failure (fault injected)')
        elif kind == '503':
            raise category_error('unavailable', protocol, 'Service unavailable (fault injected)')

    @staticmethod
    def _apply_fault_after(fault):
        """Apply a fault after the handler ran, outside the app lock: the
        state change is made (and visible), the answer is delayed or lost."""
        if fault['kind'] == 'drop-after':
            raise DropConnection()
        time.sleep(fault['seconds'])            # slow-after

    def _answer(self, proto, op_model, output, request_id, req, identity):
        """Serialize OUTPUT after checking it against the output shape."""
        status = output.pop(HTTP_STATUS, None)
        if op_model.output_shape is not None:
            problems = []
            check_shape(output, op_model.output_shape, '', problems)
            if problems:
                self.recorder.violation('fake-bug', op_model.service_model.service_name, op_model.name,
                                        'the fake built an output that breaks the model: ' + '; '.join(problems),
                                        req, identity.access_key)
        resp = proto.answer(op_model, output, request_id)
        if status is not None:
            resp.status = status
        return resp

    def _record(self, service, operation, req, identity, params, region, status, error, fault=None):
        self.recorder.call({
            'time': time.time(), 'service': service, 'region': region, 'operation': operation,
            'accessKeyId': identity.access_key if identity else None,
            'account': identity.account if identity else None,
            'assumedRole': identity.assumed_role if identity else None,
            'roleSessionName': identity.session_name if identity else None,
            'params': jsonable(params) if params is not None else None,
            'status': status, 'error': error, 'fault': fault})

    # --- control API ---

    # (method, path) -> (handler method, what it does); an unknown control
    # path is answered 404 with this list.
    CONTROL = collections.OrderedDict([
        (('GET', '/_fake/health'), ('_ctl_health', 'liveness')),
        (('POST', '/_fake/reset'), ('_ctl_reset', 'forget everything; ?only=calls,violations,stats,faults')),
        (('POST', '/_fake/configure'), ('_ctl_configure', 'merge a configuration document')),
        (('GET', '/_fake/calls'), ('_ctl_calls', 'recorded calls; ?service=&operation=&since=SEQ')),
        (('GET', '/_fake/violations'), ('_ctl_violations', 'recorded violations')),
        (('DELETE', '/_fake/violations'), ('_ctl_clear_violations', 'forget the violations')),
        (('GET', '/_fake/stats'), ('_ctl_stats', 'counts per operation')),
        (('GET', '/_fake/records'), ('_ctl_records', 'what services recorded, and the faults')),
        (('GET', '/_fake/builds'), ('_ctl_builds', 'CodeBuild builds with start/end times; ?project=')),
        (('GET', '/_fake/container-credentials'), (None, 'ECS-style credentials (served by handle)')),
    ])

    def control(self, req):
        """The /_fake/ control API (unsigned JSON)."""
        entry = self.CONTROL.get((req.method, req.raw_path))
        if entry is None or entry[0] is None:
            return json_response(404, {
                'error': 'no control endpoint %s %s' % (req.method, req.raw_path),
                'endpoints': ['%s %s: %s' % (m, p, what) for (m, p), (_, what) in self.CONTROL.items()]})
        try:
            return json_response(200, getattr(self, entry[0])(req, dict(req.query_pairs())))
        except (ConfigError, ValueError) as exc:
            return json_response(400, {'error': str(exc)})

    def _ctl_health(self, req, query):
        return {'ok': True, 'botocore': botocore.__version__, 'modelOverlay': self.catalog.overlaid}

    def _ctl_reset(self, req, query):
        self.reset(query.get('only'))
        return {'reset': query.get('only') or 'all'}

    def _ctl_configure(self, req, query):
        self.configure(json.loads(req.body.decode('utf-8') or '{}'))
        return {'configured': True}

    def _ctl_calls(self, req, query):
        since = int(query.get('since') or 0)
        return self.recorder.calls_matching(query.get('service'), query.get('operation'), since)

    def _ctl_violations(self, req, query):
        return self.recorder.snapshot_violations()

    def _ctl_clear_violations(self, req, query):
        self.recorder.reset(['violations'])
        return {'reset': 'violations'}

    def _ctl_stats(self, req, query):
        return self.recorder.snapshot_stats()

    def _ctl_records(self, req, query):
        with self.lock:
            doc = {name: jsonable(svc.records()) for name, svc in self.services.items()}
        doc['faults'] = self.faults.snapshot()
        return doc

    def _ctl_builds(self, req, query):
        with self.lock:
            return self.services['codebuild'].summaries(time.time(), query.get('project'))

    def reset(self, only=None):
        """Forget everything (or only the records named in ONLY, comma-separated)."""
        if only:
            parts = only.split(',')
            unknown = set(parts) - {'calls', 'violations', 'stats', 'faults'}
            if unknown:
                raise ConfigError('reset?only= takes calls, violations, stats, faults; got %s' % ', '.join(unknown))
            self.recorder.reset(parts)
            if 'faults' in parts:
                self.faults.reset()
            return
        with self.lock:
            self.recorder.reset()
            self.faults.reset()
            self.credentials.forget_temporary()
            self.metadata.reset()
            for svc in self.services.values():
                svc.reset()

    def configure(self, doc):
        """Apply a /_fake/configure document (ConfigError if anything is wrong).

        Sections are validated and applied in turn; on error the sections
        before the faulty one stay applied."""
        check_config_keys(doc, set(self.services) | {'faults', 'containerAuthToken', 'imds', 'credentials'},
                          'configuration')
        with self.lock:
            for name, svc in self.services.items():
                if name in doc:
                    svc.configure(doc[name])
            if 'faults' in doc:
                self.faults.add(doc['faults'])
            if 'imds' in doc:
                self.metadata.configure_imds(doc['imds'])
            if 'containerAuthToken' in doc:
                token = doc['containerAuthToken']
                if token is not None and not isinstance(token, str):
                    raise ConfigError('containerAuthToken must be a string or null')
                self.metadata.container_token = token
            if 'credentials' in doc:
                load_credentials(self.credentials, doc['credentials'], 'credentials')


def load_credentials(store, entries, where):
    """Add static keys from a list of {accessKeyId, secretAccessKey, account[, arn]}."""
    if not isinstance(entries, list):
        raise ConfigError('%s must be a list' % where)
    for i, entry in enumerate(entries):
        item = '%s[%d]' % (where, i)
        check_config_keys(entry, {'accessKeyId', 'secretAccessKey', 'account', 'arn'}, item)
        for key in ('accessKeyId', 'secretAccessKey', 'account'):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise ConfigError('%s.%s must be a non-empty string' % (item, key))
        if not re.fullmatch(r'\d{12}', entry['account']):
            raise ConfigError('%s.account must be 12 digits' % item)
        store.add_static(entry['accessKeyId'], entry['secretAccessKey'], entry['account'], entry.get('arn'))


# ---------------------------------------------------------------------------
# HTTP server and main
# ---------------------------------------------------------------------------

class FakeHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler; every answer has a Content-Length."""

    protocol_version = 'HTTP/1.1'
    server_version = 'fake_aws'
    sys_version = ''

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        self._serve()

    do_POST = do_PUT = do_HEAD = do_DELETE = do_PATCH = do_GET

    def _read_body(self):
        """Request body (Content-Length or chunked); None if too large or bad."""
        if (self.headers.get('Transfer-Encoding') or '').lower() == 'chunked':
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b';')[0].strip(), 16)
                except ValueError:
                    return None
                if size == 0:
                    while self.rfile.readline(1024) not in (b'\r\n', b'\n', b''):
                        pass
                    return b''.join(chunks)
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = self.headers.get('Content-Length')
        if length is None:
            return b''
        if not length.isdigit() or int(length) > MAX_BODY:
            return None
        return self.rfile.read(int(length))

    def _serve(self):
        app = self.server.app
        started = time.monotonic()
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send(Response(413, b'request body too large or malformed'))
            return
        req = Request(self.command, self.path, list(self.headers.items()), body,
                      '%s:%d' % self.client_address[:2])
        try:
            resp = app.handle(req)
        except DropConnection:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.server.log_line(self, req, 'drop', started)
            return
        self._send(resp)
        self.server.log_line(self, req, resp.status, started)

    def _send(self, resp):
        """Write RESP in one piece (status line, headers, body)."""
        head_only = self.command == 'HEAD'
        length = len(resp.body)
        headers = [(k, v) for k, v in resp.headers if k.lower() != 'content-length' or head_only]
        if not any(k.lower() == 'content-length' for k, _ in headers):
            headers.append(('Content-Length', str(length)))
        headers.append(('Date', self.date_time_string()))
        headers.append(('Server', self.server_version))
        if self.close_connection:
            headers.append(('Connection', 'close'))
        reason = self.responses.get(resp.status, ('Status',))[0]
        lines = ['HTTP/1.1 %d %s' % (resp.status, reason)]
        lines += ['%s: %s' % (k, v) for k, v in headers]
        data = ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1', 'replace')
        if not head_only:
            data += resp.body
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def log_message(self, fmt, *args):
        pass


class FakeServer(ThreadingHTTPServer):
    """Threaded server bound to 127.0.0.1, with an optional access log."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, port, app, log_path):
        self.app = app
        self.log_file = open(log_path, 'a', buffering=1) if log_path else None
        self.log_lock = threading.Lock()
        super().__init__(('127.0.0.1', port), FakeHandler)

    def log_line(self, handler, req, status, started):
        if self.log_file is None:
            return
        line = '%s %s %s %s%s %s %.1fms\n' % (
            iso8601(time.time(), millis=True), req.client, req.method, req.raw_path,
            '?' + req.raw_query if req.raw_query else '', status, (time.monotonic() - started) * 1000)
        with self.log_lock:
            self.log_file.write(line)


def write_port_file(path, port):
    """Write PORT to PATH atomically (PATH.tmp then rename)."""
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write('%d\n' % port)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Validating fake AWS endpoint for steppy tests.')
    parser.add_argument('--port', type=int, default=0, help='port on 127.0.0.1 (0: any free port)')
    parser.add_argument('--port-file', help='write the chosen port here once listening')
    parser.add_argument('--log', help='append one line per request to this file')
    parser.add_argument('--credentials', help='JSON list of extra static keys '
                        '{accessKeyId, secretAccessKey, account[, arn]}')
    parser.add_argument('--quiet', action='store_true', help='do not print violations to stderr')
    parser.add_argument('--max-calls', type=int, default=MAX_CALLS_KEPT,
                        help='call records kept (oldest dropped first; default %(default)s)')
    args = parser.parse_args(argv)

    app = FakeAws(ServiceCatalog(), quiet=args.quiet, max_calls=args.max_calls)
    if args.credentials:
        with open(args.credentials) as f:
            try:
                load_credentials(app.credentials, json.load(f), args.credentials)
            except (ConfigError, ValueError) as exc:
                parser.error('--credentials: %s' % exc)
    server = FakeServer(args.port, app, args.log)
    port = server.server_address[1]

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.port_file:
        write_port_file(args.port_file, port)
    sys.stderr.write('fake_aws: listening on 127.0.0.1:%d\n' % port)
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
