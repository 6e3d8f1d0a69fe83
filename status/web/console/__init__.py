"""The staff web console at /staff: server-rendered forms over the staff API's own write path.

sessions  cookie ↔ staff_sessions row; expiry      csrf      form tokens
throttle  sign-in failures per address             forms     form body → the API's JSON body
pages     Jinja2 rendering, language, ConsoleError  guard     session + CSRF for each request
writes    a form's change through staff.perform     preview   Telegram post and page wording
signin, dashboard, notices, maintenance, admin: the pages; routes: the app and its switch
"""
