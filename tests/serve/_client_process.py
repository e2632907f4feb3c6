"""One client process: makes a thread and runs turns on it, printing the run ids the server
acknowledged (the stream ended with RUN_FINISHED) as one JSON line.

Usage: python _client_process.py URL TOKEN TURNS
"""

from __future__ import annotations

import json
import sys
import uuid

import httpx


def main(url: str, token: str, turns: int) -> None:
    acknowledged, refused = [], []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=120) as client:
        thread = client.post("/api/threads", json={}).json()["threadId"]
        for i in range(turns):
            run_id = f"p{uuid.uuid4().hex[:10]}"
            text = ["add NVDA to my watchlist", "tell me a joke about python",
                    "show my watchlist"][i % 3]
            body = {"threadId": thread, "runId": run_id,
                    "messages": [{"id": run_id, "role": "user", "content": text}]}
            response = client.post(f"/api/threads/{thread}/runs", json=body)
            if response.status_code == 200 and '"type":"RUN_FINISHED"' in response.text:
                acknowledged.append(run_id)
            else:
                refused.append([response.status_code, response.text[-300:]])
    print(json.dumps({"thread": thread, "acknowledged": acknowledged, "refused": refused}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
