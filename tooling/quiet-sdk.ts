// Imported first by the local entry points (CLI, npm start, bench). The AWS SDK warns on Node < 22 that its
// releases after January 2027 need Node 22; the functions run on nodejs24.x, and this notice about the local
// Node 20 is seven lines of noise on every command (issue #13 moves local runs to the runtime's major).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
