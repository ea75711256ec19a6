"""
The web port (C{--web}): the page and its files at C{/}, and the WebSocket
endpoint at C{/ws}, behind one Origin check.

The handshake is wsproto's (as in Twisted's C{WebSocketResource}, whose
C{render_GET} this follows); the upgraded connection is a
L{wazzap.listeners.websocket.connection.WebConnection}.
"""

from importlib import resources

from twisted.logger import Logger
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from wsproto import ConnectionType
from wsproto.events import AcceptConnection
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError

from wazzap.listeners.session_user import address_of
from wazzap.listeners.websocket.connection import WebConnection

#: The page's files, shipped in the package: name -> content type.
STATIC_FILES = {
    "index.html": b"text/html; charset=utf-8",
    "app.js": b"text/javascript; charset=utf-8",
    "style.css": b"text/css; charset=utf-8",
}

#: How long an HTTP connection may stay silent before it is closed
#: (Twisted's default is 12 hours); a WebSocket is timed by its pings instead.
HTTP_IDLE_TIMEOUT_SECONDS = 60

#: What the page may load and where it may connect: its own files and its
#: own WebSocket only, no inline script, nothing from elsewhere.
CONTENT_SECURITY_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    b"connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def read_static(name):
    """
    The bytes of one of the page's files, from the installed package.
    """
    return resources.files(__package__).joinpath("static", name).read_bytes()


def origin_allowed(request, allowed_origin):
    """
    Whether C{request} may be served: it names no Origin (not a browser's
    cross-site request), or the one allowed: C{allowed_origin}, or by
    default the page's own (the scheme and the Host it was asked for under).
    """
    origin = request.getHeader("origin")
    if origin is None:
        return True
    if allowed_origin is None:
        host = request.getHeader("host") or ""
        scheme = "https" if request.isSecure() else "http"
        allowed_origin = "%s://%s" % (scheme, host)
    return origin.rstrip("/").lower() == allowed_origin.rstrip("/").lower()


class WebRoot(Resource):
    """
    Every path of the web port, behind the Origin check.
    """

    log = Logger()

    def __init__(self, factory, allowed_origin=None):
        Resource.__init__(self)
        self._allowed_origin = allowed_origin
        self._page = StaticFile("index.html")
        self.putChild(b"", self._page)
        self.putChild(b"ws", WebSocketEndpoint(factory))
        for name in STATIC_FILES:
            self.putChild(name.encode("ascii"), StaticFile(name))

    def getChildWithDefault(self, path, request):
        if not origin_allowed(request, self._allowed_origin):
            return Refusal(http.FORBIDDEN, b"this origin may not use this chat")
        return Resource.getChildWithDefault(self, path, request)


class StaticFile(Resource):
    """
    One of the page's files, read once.
    """

    isLeaf = True

    def __init__(self, name):
        Resource.__init__(self)
        self._content_type = STATIC_FILES[name]
        self._body = read_static(name)

    def render_GET(self, request):
        request.setHeader(b"content-type", self._content_type)
        request.setHeader(b"content-security-policy", CONTENT_SECURITY_POLICY)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"cache-control", b"no-cache")
        return self._body


class Refusal(Resource):
    """
    An HTTP error with a one-line reason.
    """

    isLeaf = True

    def __init__(self, code, why):
        Resource.__init__(self)
        self._code = code
        self._why = why

    def render(self, request):
        request.setResponseCode(self._code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return self._why + b"\n"


class WebSocketEndpoint(Resource):
    """
    C{/ws}: upgrades a request to a WebSocket and hands the TCP connection
    to a L{WebConnection}.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, factory):
        Resource.__init__(self)
        self._factory = factory

    def render_GET(self, request):
        handshake = H11Handshake(ConnectionType.SERVER)
        headers = [
            (name, value)
            for name, values in request.requestHeaders.getAllRawHeaders()
            for value in values
        ]
        try:
            handshake.initiate_upgrade_connection(headers, request.path)
        except RemoteProtocolError:
            request.setResponseCode(http.BAD_REQUEST)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"this is the chat's WebSocket endpoint: open / in a browser\n"
        accept = handshake.send(AcceptConnection())
        channel = request.channel
        transport = channel.transport
        peer = address_of(request.getClientAddress())
        connection = WebConnection(self._factory, handshake.connection, peer)
        # The answer first, then nothing of HTTP: the channel stops timing
        # the connection, and what arrives from now on is WebSocket frames.
        transport.write(accept)
        channel.setTimeout(None)
        channel._protocolUpgradeForWebsockets(connection)
        return NOT_DONE_YET


def web_site(factory, allowed_origin=None):
    """
    The L{Site} of the web port, for the chat of C{factory}, timing its
    HTTP connections on the factory's clock.
    """
    site = Site(
        WebRoot(factory, allowed_origin), timeout=HTTP_IDLE_TIMEOUT_SECONDS, reactor=factory.clock
    )
    site.displayTracebacks = False
    return site
