/*
 * courseport's learner-page library (plain ES2017, no dependencies).
 *
 * 1. Student events (Course Builder server spec §7.1-7.2): gcbAudit posts
 *    {source, payload (JSON text), xsrf_token} to rest/events when the page
 *    says gcbCanRecordStudentEvents; enter-page, exit-page and click-link.
 * 2. Questions rendered by courseport/server/web/questions.py (§5.4): each
 *    question's grading data sits in <script type="application/json"
 *    class="qt-data" data-for="<instanceid>">; grading happens here.
 * 3. Scored lessons (§5.5) and model 1.5 assessments (§6.3).
 */
(function () {
  'use strict';

  if (window.courseport && window.courseport.loaded) {
    return;
  }

  var CORRECT_CUTOFF = 0.99;
  var INCORRECT_CUTOFF = 0.01;
  var MESSAGES = {
    correct: 'Correct.',
    incorrect: 'Incorrect.',
    partiallyCorrect: 'Partially correct.',
    correctAnswers: 'The correct answers:',
    yourScoreIs: 'Your score is: '
  };
  var pageStart = Date.now();

  // --- events ----------------------------------------------------------------

  function pageLocale() {
    var body = document.body;
    return body ? body.getAttribute('data-gcb-page-locale') : null;
  }

  function eventsUrl() {
    return new URL('rest/events', document.baseURI).href;
  }

  function requestBody(source, payload) {
    var data = Object.assign({}, payload || {});
    data.location = String(window.location);
    data.loc = Object.assign({}, data.loc, {page_locale: pageLocale()});
    var request = {
      source: source,
      payload: JSON.stringify(data),
      xsrf_token: window.eventXsrfToken || ''
    };
    return new URLSearchParams({request: JSON.stringify(request)});
  }

  function pushDataLayer(source, payload, isPageEvent) {
    if (!Array.isArray(window.dataLayer)) {
      return;
    }
    window.dataLayer.push({
      event: 'gcb.' + (isPageEvent ? 'page' : 'event') + '.' + source,
      gcb_event_source: source,
      gcb_event_payload: payload
    });
  }

  /**
   * Records one student event. Page events are sent with keepalive (Course
   * Builder used synchronous requests); useBeacon sends through
   * navigator.sendBeacon, for a page that is going away.
   */
  function gcbAudit(source, payload, isPageEvent, useBeacon) {
    pushDataLayer(source, payload, isPageEvent);
    if (window.gcbCanRecordStudentEvents !== true) {
      return;
    }
    var body = requestBody(source, payload);
    if (useBeacon && navigator.sendBeacon && navigator.sendBeacon(eventsUrl(), body)) {
      return;
    }
    fetch(eventsUrl(), {
      method: 'POST',
      body: body,
      credentials: 'same-origin',
      keepalive: !!isPageEvent
    }).catch(function () {});
  }

  function bindPageEvents() {
    gcbAudit('enter-page', {}, true);
    window.addEventListener('pagehide', function () {
      gcbAudit('exit-page', {duration: Date.now() - pageStart}, true, true);
    });
    var notes = document.getElementById('lessonNotesLink');
    if (notes) {
      notes.addEventListener('click', function () {
        gcbAudit('click-link', {href: notes.href}, true);
      });
    }
  }

  // --- small helpers -----------------------------------------------------------

  function round2(x) {
    return Math.round(x * 100) / 100;
  }

  function clamp01(x) {
    return Math.min(Math.max(x, 0), 1);
  }

  function verdict(score) {
    if (score > CORRECT_CUTOFF) {
      return 'correct';
    }
    return score < INCORRECT_CUTOFF ? 'incorrect' : 'partially-correct';
  }

  var VERDICT_TEXT = {
    'correct': MESSAGES.correct,
    'incorrect': MESSAGES.incorrect,
    'partially-correct': MESSAGES.partiallyCorrect
  };

  function element(tag, className, html) {
    var el = document.createElement(tag);
    if (className) {
      el.className = className;
    }
    if (html) {
      el.innerHTML = html;  // author content (feedback, hints), as Course Builder shows it
    }
    return el;
  }

  function ownFeedback(el) {
    for (var i = 0; i < el.children.length; i++) {
      if (el.children[i].classList.contains('qt-feedback')) {
        return el.children[i];
      }
    }
    return null;
  }

  /** Shows nodes in a question's own feedback box, with a verdict when score is given. */
  function showFeedback(el, nodes, score) {
    var box = ownFeedback(el);
    if (!box) {
      return;
    }
    box.textContent = '';
    box.classList.remove('qt-correct', 'qt-incorrect', 'qt-partially-correct');
    if (typeof score === 'number') {
      var kind = verdict(score);
      box.classList.add('qt-' + kind);
      var message = element('p', 'qt-verdict');
      message.textContent = VERDICT_TEXT[kind];
      box.appendChild(message);
    }
    nodes.forEach(function (node) {
      box.appendChild(node);
    });
    box.hidden = false;
  }

  var questionData = null;

  function dataFor(id) {
    if (questionData === null) {
      questionData = {};
      document.querySelectorAll('script.qt-data').forEach(function (script) {
        try {
          questionData[script.getAttribute('data-for')] = JSON.parse(script.textContent);
        } catch (e) {
          // a question without readable data is left out
        }
      });
    }
    return questionData[id] || null;
  }

  // --- multiple choice ---------------------------------------------------------

  function McQuestion(el, data) {
    this.el = el;
    this.id = el.id;
    this.data = data;
    this.type = 'McQuestion';
    this.choicesBox = el.querySelector('.qt-choices');
    this.inputs = Array.prototype.slice.call(el.querySelectorAll('.qt-choices input[data-index]'));
    this.permutation = null;
    if (data.permuteChoices) {
      this.applyPermutation(randomPermutation(this.inputs.length));
    }
  }

  function identity(size) {
    var perm = [];
    for (var i = 0; i < size; i++) {
      perm.push(i);
    }
    return perm;
  }

  function randomPermutation(size) {
    var perm = identity(size);
    for (var j = size - 1; j > 0; j--) {
      var k = Math.floor(Math.random() * (j + 1));
      var swap = perm[j];
      perm[j] = perm[k];
      perm[k] = swap;
    }
    return perm;
  }

  function inputIndex(input) {
    return parseInt(input.getAttribute('data-index'), 10);
  }

  /** Shows choice perm[i] at position i. */
  McQuestion.prototype.applyPermutation = function (perm) {
    var rows = {};
    this.inputs.forEach(function (input) {
      rows[inputIndex(input)] = input.parentNode;
    });
    var box = this.choicesBox;
    perm.forEach(function (index) {
      if (rows[index]) {
        box.appendChild(rows[index]);
      }
    });
    this.permutation = perm.slice();
  };

  McQuestion.prototype.weight = function () {
    var weight = Number(this.data.weight);
    return (this.data.weight == null || isNaN(weight)) ? 1 : weight;
  };

  McQuestion.prototype.grade = function () {
    var choices = this.data.choices || [];
    var answer = [];
    var score = 0;
    var feedback = [];
    this.inputs.forEach(function (input) {
      var index = inputIndex(input);
      var choice = choices[index];
      if (input.checked && choice) {
        answer.push(index);
        score += parseFloat(choice.score) || 0;
        if (choice.feedback) {
          feedback.push(element('li', '', choice.feedback));
        }
      }
    });
    answer.sort(function (a, b) {
      return a - b;
    });
    score = round2(clamp01(score));
    if (this.data.allOrNothingGrading) {
      score = score > CORRECT_CUTOFF ? 1 : 0;
    }
    return {answer: answer, score: score, feedback: this.feedbackNodes(score, feedback)};
  };

  McQuestion.prototype.feedbackNodes = function (score, chosen) {
    var nodes = [];
    if (this.data.showAnswerWhenIncorrect && score <= CORRECT_CUTOFF) {
      var heading = element('p', 'qt-correct-answers');
      heading.textContent = MESSAGES.correctAnswers;
      nodes.push(heading);
      var list = element('ul', 'qt-correct-choices');
      (this.data.choices || []).forEach(function (choice) {
        if (parseFloat(choice.score) > 0) {
          list.appendChild(element('li', '', choice.text));
        }
      });
      nodes.push(list);
    }
    if (chosen.length) {
      var ul = element('ul', 'qt-choice-feedback');
      chosen.forEach(function (li) {
        ul.appendChild(li);
      });
      nodes.push(ul);
    }
    if (this.data.defaultFeedback) {
      nodes.push(element('div', 'qt-default-feedback', this.data.defaultFeedback));
    }
    return nodes;
  };

  McQuestion.prototype.getState = function () {
    var responses = [];
    this.inputs.forEach(function (input) {
      responses[inputIndex(input)] = input.checked;
    });
    if (this.data.permuteChoices) {
      return {responses: responses, permutation: this.permutation};
    }
    return responses;
  };

  McQuestion.prototype.setState = function (state) {
    if (!state) {
      return;
    }
    var responses = Array.isArray(state) ? state : state.responses;
    if (!Array.isArray(responses)) {
      return;
    }
    this.inputs.forEach(function (input) {
      var value = responses[inputIndex(input)];
      if (typeof value === 'boolean') {
        input.checked = value;
      }
    });
    // An answer given while choices were permuted is shown in that order.
    if (!Array.isArray(state) && Array.isArray(state.permutation) &&
        state.permutation.length === this.inputs.length) {
      this.data.permuteChoices = true;
      this.applyPermutation(state.permutation);
    } else if (Array.isArray(state) && this.data.permuteChoices) {
      this.applyPermutation(identity(this.inputs.length));
    }
  };

  // --- short answer ------------------------------------------------------------

  function SaQuestion(el, data) {
    this.el = el;
    this.id = el.id;
    this.data = data;
    this.type = 'SaQuestion';
    this.input = el.querySelector('input.qt-response, textarea.qt-response');
    var hint = el.querySelector('button.qt-hint');
    var that = this;
    if (hint) {
      hint.addEventListener('click', function () {
        showFeedback(that.el, [element('div', 'qt-hint-text', that.data.hint || '')]);
      });
    }
  }

  SaQuestion.prototype.weight = McQuestion.prototype.weight;

  /** A grader's regex as the client reads it: /body/flags anywhere in the text, or bare. */
  function parseRegExp(text) {
    var slashed = text.match(/\/(.*)\/([gim]*)/);
    return slashed ? new RegExp(slashed[1], slashed[2]) : new RegExp(text);
  }

  var MATCHERS = {
    case_insensitive: function (expected, response) {
      return expected.toLowerCase() === response.toLowerCase();
    },
    regex: function (expected, response) {
      try {
        return parseRegExp(expected).test(response);
      } catch (e) {
        return false;
      }
    },
    numeric: function (expected, response) {
      return parseFloat(expected) === parseFloat(response);
    }
  };

  SaQuestion.prototype.response = function () {
    return this.input ? this.input.value : '';
  };

  SaQuestion.prototype.grade = function () {
    var response = this.response();
    var graders = this.data.graders || [];
    for (var i = 0; i < graders.length; i++) {
      var grader = graders[i];
      var matches = MATCHERS[grader.matcher];
      if (matches && matches(String(grader.response || ''), response)) {
        var nodes = grader.feedback ? [element('div', 'qt-grader-feedback', grader.feedback)] : [];
        return {answer: response, score: clamp01(parseFloat(grader.score) || 0), feedback: nodes};
      }
    }
    var fallback = this.data.defaultFeedback ?
        [element('div', 'qt-default-feedback', this.data.defaultFeedback)] : [];
    return {answer: response, score: 0, feedback: fallback};
  };

  SaQuestion.prototype.getState = function () {
    return {response: this.response()};
  };

  SaQuestion.prototype.setState = function (state) {
    if (state && state.response != null && this.input) {
      this.input.value = state.response;
    }
  };

  // --- question groups ---------------------------------------------------------

  function QuestionGroup(el, data) {
    this.el = el;
    this.id = el.id;
    this.data = data;
    this.type = 'QuestionGroup';
    this.items = data.items || {};
    var members = [];
    el.querySelectorAll('.qt-mc-question.qt-embedded, .qt-sa-question.qt-embedded')
        .forEach(function (memberEl) {
          var member = makeQuestion(memberEl);
          if (member) {
            members.push(member);
          }
        });
    this.members = members;
  }

  QuestionGroup.prototype.memberWeight = function (member) {
    var item = this.items[member.id];
    var weight = item ? parseFloat(item.weight) : NaN;
    return isNaN(weight) ? 1 : weight;
  };

  /** The sum of the members' weights (never 0: it divides). */
  QuestionGroup.prototype.weight = function () {
    var that = this;
    return this.members.reduce(function (sum, member) {
      return sum + that.memberWeight(member);
    }, 0) + 1e-12;
  };

  QuestionGroup.prototype.grade = function () {
    var that = this;
    var result = {answer: [], score: 0, feedback: [], individualScores: [], containedTypes: [],
      quids: []};
    var weighted = 0;
    this.members.forEach(function (member) {
      var grade = member.grade();
      result.answer.push(grade.answer);
      result.individualScores.push(grade.score);
      result.containedTypes.push(member.type);
      result.quids.push(member.data.quid);
      result.feedback.push(grade);
      weighted += that.memberWeight(member) * grade.score;
    });
    result.score = weighted / this.weight();
    return result;
  };

  QuestionGroup.prototype.showMemberFeedback = function (grade) {
    this.members.forEach(function (member, i) {
      var memberGrade = grade.feedback[i];
      showFeedback(member.el, memberGrade.feedback, memberGrade.score);
    });
  };

  QuestionGroup.prototype.getState = function () {
    var state = {};
    this.members.forEach(function (member) {
      state[member.id] = member.getState();
    });
    return state;
  };

  QuestionGroup.prototype.setState = function (state) {
    if (!state || typeof state !== 'object') {
      return;
    }
    this.members.forEach(function (member) {
      member.setState(state[member.id]);
    });
  };

  // --- building and checking questions --------------------------------------------

  function makeQuestion(el) {
    var data = dataFor(el.id);
    if (!data) {
      return null;
    }
    if (el.classList.contains('qt-mc-question')) {
      return new McQuestion(el, data);
    }
    if (el.classList.contains('qt-sa-question')) {
      return new SaQuestion(el, data);
    }
    return new QuestionGroup(el, data);
  }

  /** Shows a question's (or group's) grade in the page. */
  function display(question, grade) {
    if (question instanceof QuestionGroup) {
      showFeedback(question.el, [], grade.score);
      question.showMemberFeedback(grade);
    } else {
      showFeedback(question.el, grade.feedback, grade.score);
    }
  }

  function componentPayload(question, grade) {
    var payload = {instanceid: question.id};
    if (question instanceof QuestionGroup) {
      payload.answer = grade.answer;
      payload.score = round2(grade.score);
      payload.individualScores = grade.individualScores;
      payload.containedTypes = grade.containedTypes;
      payload.quids = grade.quids;
    } else {
      payload.quid = question.data.quid;
      payload.answer = grade.answer;
      payload.score = round2(grade.score);
    }
    payload.type = question.type;
    return payload;
  }

  function checkAnswer(question) {
    var grade = question.grade();
    display(question, grade);
    gcbAudit('tag-assessment', componentPayload(question, grade), false);
  }

  function scoredContainer(el) {
    var batch = el.closest('.qt-assessment, [data-question-batch-id]');
    return batch && (batch.classList.contains('qt-assessment') ||
        batch.getAttribute('data-scored') === 'True') ? batch : null;
  }

  function bindStandalone(question) {
    var button = null;
    for (var i = 0; i < question.el.children.length; i++) {
      if (question.el.children[i].classList.contains('qt-check-answer')) {
        button = question.el.children[i];
      }
    }
    if (!button) {
      return;
    }
    if (scoredContainer(question.el)) {
      button.hidden = true;
      return;
    }
    button.addEventListener('click', function () {
      checkAnswer(question);
    });
  }

  /** The top-level questions (standalone questions and groups) inside root, in page order. */
  function topLevelQuestions(root) {
    var found = [];
    root.querySelectorAll('.qt-mc-question.qt-standalone, .qt-sa-question.qt-standalone, ' +
        '.qt-question-group').forEach(function (el) {
      var question = el.courseportQuestion;
      if (question) {
        found.push(question);
      }
    });
    return found;
  }

  // --- batches: scored lessons and assessments ---------------------------------------

  /** Grades every question of a batch, as Course Builder's gradeScoredLesson does. */
  function gradeBatch(questions) {
    var result = {answers: {version: '1.5'}, individualScores: {}, containedTypes: {}, quids: {},
      score: 0, totalWeight: 0, grades: []};
    questions.forEach(function (question) {
      var grade = question.grade();
      var isGroup = question instanceof QuestionGroup;
      result.answers[question.id] = grade.answer;
      result.individualScores[question.id] = isGroup ? grade.individualScores : grade.score;
      result.containedTypes[question.id] = isGroup ? grade.containedTypes : question.type;
      result.quids[question.id] = isGroup ? grade.quids : question.data.quid;
      result.score += grade.score * question.weight();
      result.totalWeight += question.weight();
      result.grades.push(grade);
    });
    return result;
  }

  function formatNumber(x) {
    return String(round2(x));
  }

  function showBatch(container, questions, batch) {
    questions.forEach(function (question, i) {
      display(question, batch.grades[i]);
    });
    var report = container.querySelector('.qt-grade-report');
    if (!report) {
      report = container.appendChild(element('div', 'qt-grade-report'));
    }
    report.textContent = MESSAGES.yourScoreIs + formatNumber(batch.score) + '/' +
        formatNumber(batch.totalWeight);
    report.hidden = false;
  }

  function auditBatch(batch) {
    gcbAudit('attempt-lesson', {
      type: 'scored-lesson',
      answers: batch.answers,
      individualScores: batch.individualScores,
      score: round2(batch.score),
      containedTypes: batch.containedTypes,
      quids: batch.quids
    }, false);
  }

  function gradeAndReport(container) {
    var questions = topLevelQuestions(container);
    var batch = gradeBatch(questions);
    showBatch(container, questions, batch);
    auditBatch(batch);
  }

  function bindScoredLesson(container) {
    container.querySelectorAll('.qt-grade-scored-lesson').forEach(function (control) {
      control.hidden = false;
      control.classList.remove('qt-hidden');
      control.addEventListener('click', function () {
        gradeAndReport(container);
      });
    });
  }

  /** The answers object /answer stores (spec §6.3). */
  function assessmentAnswers(questions, batch) {
    var graded = Object.assign({}, batch.answers);
    delete graded.version;
    var answers = {
      version: '1.5',
      answers: graded,
      individualScores: batch.individualScores,
      containedTypes: batch.containedTypes,
      quids: batch.quids,
      rawScore: round2(batch.score),
      totalWeight: round2(batch.totalWeight),
      percentScore: round2(percent(batch))
    };
    questions.forEach(function (question) {
      answers[question.id] = question.getState();
    });
    return answers;
  }

  function percent(batch) {
    return batch.score / (batch.totalWeight + 1e-12) * 100;
  }

  function hiddenField(form, name, value) {
    var input = document.createElement('input');
    input.type = 'hidden';
    input.name = name;
    input.value = value;
    form.appendChild(input);
  }

  function submitAssessment(container) {
    var questions = topLevelQuestions(container);
    var batch = gradeBatch(questions);
    var form = document.createElement('form');
    form.method = 'POST';
    form.action = container.getAttribute('data-grader-uri') || 'answer';
    form.hidden = true;
    hiddenField(form, 'assessment_type', container.getAttribute('data-unit-id') || '');
    hiddenField(form, 'score', percent(batch).toFixed(2));
    hiddenField(form, 'answers', JSON.stringify(assessmentAnswers(questions, batch)));
    hiddenField(form, 'xsrf_token', container.getAttribute('data-xsrf-token') || '');
    document.body.appendChild(form);
    form.submit();
  }

  function restoreSavedAnswers(container) {
    var script = container.querySelector('script.qt-saved-answers');
    if (!script) {
      return;
    }
    var saved;
    try {
      saved = JSON.parse(script.textContent);
    } catch (e) {
      return;
    }
    if (!saved || typeof saved !== 'object') {
      return;
    }
    topLevelQuestions(container).forEach(function (question) {
      if (Object.prototype.hasOwnProperty.call(saved, question.id)) {
        question.setState(saved[question.id]);
      }
    });
  }

  function bindAssessment(container) {
    restoreSavedAnswers(container);
    container.querySelectorAll('.qt-check-answers').forEach(function (button) {
      if (container.getAttribute('data-check-answers') === 'false') {
        button.hidden = true;
        return;
      }
      button.addEventListener('click', function () {
        gradeAndReport(container);
      });
    });
    container.querySelectorAll('.qt-submit-answers').forEach(function (button) {
      button.addEventListener('click', function () {
        button.disabled = true;
        submitAssessment(container);
      });
    });
  }

  // --- start ---------------------------------------------------------------------

  function initQuestions() {
    document.querySelectorAll('.qt-mc-question.qt-standalone, .qt-sa-question.qt-standalone, ' +
        '.qt-question-group').forEach(function (el) {
      var question = makeQuestion(el);
      if (question) {
        el.courseportQuestion = question;
        bindStandalone(question);
      }
    });
    document.querySelectorAll('.gcb-lesson-content[data-scored="True"]').forEach(bindScoredLesson);
    document.querySelectorAll('.qt-assessment').forEach(bindAssessment);
  }

  function start() {
    initQuestions();
    bindPageEvents();
  }

  window.gcbAudit = gcbAudit;
  window.courseport = {
    loaded: true,
    audit: gcbAudit,
    grading: {parseRegExp: parseRegExp, matchers: MATCHERS, round2: round2}
  };

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
