"""Drive `agentcred mcp` with the official MCP Python SDK (a client we did not write).

Reads a JSON spec on stdin:
  {"era": "legacy" | "modern", "command": [...], "env": {...}, "stderr": PATH,
   "calls": [{"name": TOOL, "arguments": {...}}, ...]}
connects over stdio (`stdio_client` + `ClientSession`), opens the session the way the era
says (legacy: the `initialize` handshake; modern: the 2026-07-28 `server/discover`),
lists the tools, makes each call, and prints one JSON document: what the server said
about itself, the tools, and each call's result. The server's stderr goes to the file
named by "stderr".
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def main():
    spec = json.load(sys.stdin)
    params = StdioServerParameters(
        command=spec["command"][0], args=spec["command"][1:], env=spec.get("env")
    )
    with open(spec["stderr"], "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                if spec["era"] == "legacy":
                    result = await session.initialize()
                else:
                    result = await session.discover()
                tools = await session.list_tools()
                results = []
                for call in spec["calls"]:
                    answer = await session.call_tool(call["name"], call.get("arguments") or {})
                    results.append(dump(answer))
                out = {
                    "protocol_version": session.protocol_version,
                    "server_name": session.server_info.name if session.server_info else None,
                    "opened_with": dump(result),
                    "tools": [dump(tool) for tool in tools.tools],
                    "results": results,
                }
    json.dump(out, sys.stdout)


asyncio.run(main())
