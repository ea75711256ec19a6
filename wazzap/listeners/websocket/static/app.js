// The wazzap page: speaks the JSON of wazzap.listeners.websocket over /ws.
// Everything a user typed is put on the page with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let socket = null;
let pendingPassword = null;
let secretNext = false;
let me = null;  // {nickname, color} once joined

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function colored(text, color) {
  return element("span", color ? "c-" + color : "", text);
}

function show(parts, className) {
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const item = element("li", className);
  for (const part of parts) item.append(typeof part === "string" ? document.createTextNode(part) : part);
  list.append(item);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function describe(event) {
  // The parts of one event's line, and its class.
  switch (event.type) {
    case "said": {
      const nick = colored(event.nickname, event.color);
      nick.classList.add("nick");
      return [[nick, ": ", colored(event.text, event.style)], "said"];
    }
    case "emoted":
      return [["* ", colored(event.nickname, event.color), " " + event.action], "emoted"];
    case "private":
      return [[(event.direction === "to" ? "[PM to " : "[PM from ") + event.nickname + "] ",
               colored(event.text, event.style)], "private"];
    case "joined":
      return [["[Server] " + event.nickname + " joined " + (event.room || "the chat")], "server"];
    case "left":
      return [["[Server] " + event.nickname + " left " + (event.room || "the chat") +
               (event.reason ? " (" + event.reason + ")" : "")], "server"];
    case "renamed":
      return [["[Server] " + event.old + " is now known as " + event.new], "server"];
    case "topic":
      return [["[Server] " + event.nickname + (event.topic ? " set the topic of " + event.room + ": " +
               event.topic : " cleared the topic of " + event.room)], "server"];
    case "presence":
      return [["[Server] " + event.joined + " joined, " + event.left + " left in the last " +
               event.window_seconds + " s"], "server"];
    case "notice":
    case "announcement":
      return [["[Server] " + event.text], "server"];
    case "history": {
      const [parts] = describe(event.event);
      const when = new Date(event.at * 1000).toISOString().slice(event.dated ? 0 : 11, 16).replace("T", " ");
      return [["[history " + event.room + " " + when + "] ", ...parts], "history"];
    }
    default:
      return [["[Server] (unknown message " + event.type + ")"], "server"];
  }
}

function received(message) {
  if (message.type === "state") {
    secretNext = message.secret;
    $("line").type = secretNext ? "password" : "text";
    if (secretNext && pendingPassword) {
      send(pendingPassword);
      pendingPassword = null;
      return;
    }
    if (message.nickname) {
      me = {nickname: message.nickname, color: message.color};
      $("login").hidden = true;
      $("chat").hidden = false;
      $("status").textContent = message.nickname + " in " + (message.room || "");
      $("line").focus();
      const rooms = $("rooms");
      rooms.replaceChildren();
      for (const room of message.rooms) {
        const item = element("li", room === message.room ? "current" : "", room);
        item.addEventListener("click", () => send("/join " + room));
        rooms.append(item);
      }
    }
    return;
  }
  const [parts, className] = describe(message);
  const where = message.from_room ? [element("span", "room", "[" + message.from_room + "] ")] : [];
  show(where.concat(parts), className);
}

function send(text) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({type: "line", text: text}));
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(scheme + "//" + location.host + "/ws");
  socket.addEventListener("open", () => { $("status").textContent = "connected"; });
  socket.addEventListener("message", (message) => {
    for (const line of message.data.split("\n")) if (line) received(JSON.parse(line));
  });
  socket.addEventListener("close", (close) => {
    $("status").textContent = "disconnected" + (close.reason ? ": " + close.reason : "");
    show(["[Server] disconnected" + (close.reason ? ": " + close.reason : "")], "server");
    $("chat").hidden = false;
  });
}

$("login").addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  pendingPassword = $("password").value || null;
  $("password").value = "";
  send($("nickname").value.trim());
  $("chat").hidden = false;
});

$("say").addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  const text = $("line").value;
  if (!text.trim()) return;
  send(text);
  // The server does not echo one's own public lines, as a terminal shows them typed.
  const shown = text.trimStart();
  if (secretNext || !me) {
    // a password, or a nickname: not shown
  } else if (shown.startsWith("/") && !shown.startsWith("//")) {
    show(["> " + text], "echo");
  } else if (!shown.startsWith("@")) {
    const nick = colored(me.nickname, me.color);
    nick.classList.add("nick");
    show([nick, ": " + (shown.startsWith("//") ? text.replace("/", "") : text)], "said");
  }
  $("line").value = "";
});

connect();
