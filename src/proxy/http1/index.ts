// The proxy's HTTP/1.1 codec: strict incremental head parsing, body framing for verbatim forwarding, head
// serialization with hop-by-hop removal, and local replies. Pure: no sockets, no timers. See each module's
// header for its API and the strictness decisions.
export { HttpParseError, type HttpParseCode, type HttpSide } from './errors.ts';
export {
  CHUNKED, DEFAULT_HEAD_LIMITS, NO_BODY, UNTIL_CLOSE,
  type BodyFraming, type HeadLimits, type HttpVersion, type ParsedRequest, type ParsedResponse, type RequestHead,
  type ResponseHead, type TargetForm,
} from './head.ts';
export { parseRequestHead, parseResponseHead } from './parse.ts';
export { BodyFramer, DEFAULT_BODY_LIMITS, type BodyLimits } from './body.ts';
export {
  CONTINUE_100, MAX_SET_FIELDS, REASON_PHRASES, localReply, rawHeadWithout, serializeRequestHead, serializeResponseHead,
  type HeadEdits, type LocalReply, type RequestHeadEdits, type ResponseHeadEdits,
} from './serialize.ts';
