#!/usr/bin/python3
"""signed_request.py -- send one SigV4-signed json-1.1 request (tests only).

For requests the AWS CLI 2.9 cannot make, such as members newer than its
botocore (MODEL_OVERLAY in fake_aws.py).  The request is signed with
botocore's SigV4Auth for the credentials in AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if set), region
AWS_DEFAULT_REGION:

    /usr/bin/python3 tests/aws/signed_request.py ENDPOINT SERVICE TARGET JSON-BODY
    e.g. ... http://127.0.0.1:PORT codepipeline \\
             CodePipeline_20150709.StartPipelineExecution '{"name": "release"}'

Prints the HTTP status on the first line, then the response body.  Exit
status 0 for a 2xx answer, 1 otherwise, 2 when the request could not be sent.
"""

import http.client
import os
import sys
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signed_json_request(endpoint, service, target, body, region, credentials):
    """(status, body bytes) of a json-1.1 POST to ENDPOINT, signed for SERVICE."""
    url = urlsplit(endpoint)
    req = AWSRequest(method='POST', url=endpoint.rstrip('/') + '/', data=body.encode('utf-8'),
                     headers={'Content-Type': 'application/x-amz-json-1.1',
                              'X-Amz-Target': target, 'Host': url.netloc})
    SigV4Auth(credentials, service, region).add_auth(req)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request('POST', '/', body=req.body, headers=dict(req.headers.items()))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def main(argv):
    if len(argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    endpoint, service, target, body = argv[1:]
    credentials = Credentials(os.environ['AWS_ACCESS_KEY_ID'], os.environ['AWS_SECRET_ACCESS_KEY'],
                              os.environ.get('AWS_SESSION_TOKEN'))
    try:
        status, answer = signed_json_request(endpoint, service, target, body,
                                             os.environ.get('AWS_DEFAULT_REGION', 'us-east-1'),
                                             credentials)
    except OSError as exc:
        sys.stderr.write('signed_request.py: %s\n' % exc)
        return 2
    sys.stdout.write('%d\n%s\n' % (status, answer.decode('utf-8', 'replace')))
    return 0 if 200 <= status < 300 else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
